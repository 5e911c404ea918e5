"""``qwqbot digest run CHANNEL_ID [--dry-run]``: one digest now, from a terminal.

Whatever goes wrong ends as one line on stderr that says what to do, and a non-zero exit:
2 for arguments that cannot work (checked before Slack is asked), 1 when Slack or the model
refused."""

from __future__ import annotations

import re
import sys
import time
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qwqbot.config import Settings
from qwqbot.model.client import ModelClient
from qwqbot.slack.app import make_client, make_raw_client
from qwqbot.slack.identity import authenticate
from qwqbot.slack.services import build_services
from qwqbot.store import open_store

EXIT_USAGE = 2
# Conversation ids: C (public or private channel), G (older private channels), D (a DM).
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")
# What Slack's refusals mean for a digest asked for by id, and what to do
# (https://docs.slack.dev/reference/methods/conversations.history, "Errors").
_FIXES = {
    "channel_not_found": "Slack has no channel {id} that the bot can see: check the id (in "
    "Slack, the channel's name, then About) and, for a private channel, invite the bot there "
    "first (/invite @qwqbot)",
    "not_in_channel": "the bot is not in #{name}: invite it there first (/invite @qwqbot)",
    "is_archived": "#{name} is archived: unarchive it, or pick another channel",
    "missing_scope": "the app lacks a scope this channel needs: reinstall it from manifest.yml",
}


def argument_problem(channel_id: str, *, hours: float | None, tz: str) -> str | None:
    """Why these arguments cannot make a digest, or None."""
    if not _CHANNEL_ID.fullmatch(channel_id):
        return (f"{channel_id!r} is not a channel id: give the id, such as C0123456789 (in "
                "Slack, the channel's name, then About, shows it)")
    if hours is not None and hours <= 0:
        return f"--hours should be above 0 (got {hours:g})"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return f"--tz {tz!r} is not a time zone: give an IANA name such as Europe/Berlin, or UTC"
    return None


async def run_digest(settings: Settings, channel_id: str, *, dry_run: bool, hours: float | None,
                     tz: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    problem = argument_problem(channel_id, hours=hours, tz=tz)
    if problem:
        err.write(f"qwqbot: {problem}\n")
        return EXIT_USAGE
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
    fix = _FIXES.get(outcome.error)
    said = (fix.format(id=channel_id, name=name) + f" (Slack said {outcome.error})" if fix
            else outcome.error)
    err.write(f"qwqbot: the digest could not be made: {said}\n")
    return 1
