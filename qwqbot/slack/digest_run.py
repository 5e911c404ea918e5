"""``qwqbot digest run CHANNEL_ID [--dry-run]``: one digest now, from a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from qwqbot.config import Settings
from qwqbot.model.client import ModelClient
from qwqbot.slack.app import make_client, make_raw_client
from qwqbot.slack.identity import authenticate
from qwqbot.slack.services import build_services
from qwqbot.store import open_store


async def run_digest(settings: Settings, channel_id: str, *, dry_run: bool, hours: float | None,
                     tz: str, out: TextIO = sys.stdout) -> int:
    settings.require("slack_bot_token", "aiml_api_key")
    store = open_store(settings.db_path)
    client = make_client(settings)
    model = ModelClient.from_settings(settings)
    try:
        identity = await authenticate(client, settings.slack_api_url)
        services = build_services(settings, store=store, client=client,
                                  raw_client=make_raw_client(settings), model=model,
                                  identity=identity)
        end = time.time()
        start = end - hours * 3600 if hours else (
            services.digests.last_posted_end(channel_id) or end - 24 * 3600)
        name = await services.channels.name(channel_id)
        outcome = await services.digest_runner.run(channel_id=channel_id, channel_name=name, schedule_id=None,
                                   period_key=f"cli:{end:.3f}", start=start, end=end, tz=tz,
                                   title=f"Digest of #{name}", dry_run=dry_run)
    finally:
        await model.aclose()
        store.close()
    if outcome.status == "dry_run":
        out.write(outcome.markdown.rstrip() + "\n")
        return 0
    if outcome.status == "posted":
        plural = "" if outcome.messages == 1 else "s"
        out.write(f"Posted the digest of #{name} ({outcome.messages:,} message{plural}).\n")
        return 0
    if outcome.status == "empty":
        out.write(f"No messages in #{name} in that period: nothing posted.\n")
        return 0
    sys.stderr.write(f"qwqbot: the digest could not be made: {outcome.error}\n")
    return 1
