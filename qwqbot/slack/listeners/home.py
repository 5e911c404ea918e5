"""The App Home tab, rebuilt each time someone opens it."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError

from qwqbot.slack.home import home_view
from qwqbot.slack.services import Services
from qwqbot.store.usage import feedback_counts, prompt_drift, tokens_today, top_users, windows

log = logging.getLogger(__name__)


async def build_home(services: Services, user_id: str) -> dict[str, Any]:
    store, policy = services.store, services.policy
    now = time.time()
    digests = []
    for row in services.digests.schedules():
        if user_id not in await services.channels.members(row["channel_id"]):
            continue  # a channel's digest is shown only to people in that channel
        last = services.digests.last_run(row["id"])
        digests.append({**row, "last_status": last["status"] if last else None,
                        "last_period_end": last["period_end"] if last else None,
                        "next_run": services.scheduler.next_run(row["id"])})
    limit = policy.daily_limit(user_id)
    admin = policy.is_admin(user_id)
    month, week = now - 30 * 86400, now - 7 * 86400
    return home_view(
        user_id=user_id, is_admin=admin, own=windows(store, now=now, user_id=user_id),
        quota=(tokens_today(store, user_id, now=now), limit) if limit > 0 else None,
        digests=digests,
        workspace=windows(store, now=now) if admin else None,
        top=top_users(store, since=month) if admin else None,
        feedback=feedback_counts(store, since=month) if admin else None,
        access=[{"channel_id": c, "rule": r} for c, r in services.controls.access_rules().items()]
        if admin else None,
        drift=prompt_drift(store, since=week) if admin else None, drift_period="7 days")


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return  # the Messages tab opens a DM; nothing to draw
        user = str(event["user"])
        view = await build_home(services, user)
        try:
            await services.client.views_publish(user_id=user, view=view)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("views.publish for %s failed: %s", user, type(exc).__name__)
