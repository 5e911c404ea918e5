"""Who may use the bot where, and how much: channel access, daily token quotas, and the
per-channel settings that change how answers are made. Checked before anything is sent
to the model, so a refused question costs nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from qwqbot.config import Settings
from qwqbot.formatting import format_tokens
from qwqbot.store import Store
from qwqbot.store.controls import ControlStore
from qwqbot.store.usage import day_start, tokens_today


@dataclass(frozen=True)
class Refusal:
    reason: str  # denied | not_allowed | quota
    message: str


class Policy:
    def __init__(self, settings: Settings, store: Store, controls: ControlStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.controls = controls
        self.clock = clock

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.settings.admins

    # -- access ------------------------------------------------------------------------

    def channel_refusal(self, channel_id: str) -> Refusal | None:
        rules = self.controls.access_rules()
        rule = rules.get(channel_id)
        if rule is None and channel_id in self.settings.denied_channels:
            rule = "deny"
        if rule is None and channel_id in self.settings.allowed_channels:
            rule = "allow"
        if rule == "deny":
            return Refusal("denied", "qwqbot is turned off in this channel by the bot's admins. "
                           "You can still ask in a direct message with the bot.")
        allow_list = set(self.settings.allowed_channels) | {
            c for c, r in rules.items() if r == "allow"}
        # With an allow list, only listed channels (and DMs with the bot) may use it.
        if rule is None and allow_list and not channel_id.startswith("D"):
            return Refusal("not_allowed", "qwqbot is not enabled in this channel. Ask the bot's "
                           "admins to allow it here, or ask in a direct message with the bot.")
        return None

    def daily_limit(self, user_id: str) -> int:
        """Tokens a day for this person; 0 means no limit."""
        own = self.controls.quota(user_id)
        return own if own is not None else self.settings.user_daily_tokens

    def quota_refusal(self, user_id: str) -> Refusal | None:
        limit = self.daily_limit(user_id)
        if limit <= 0:
            return None
        now = self.clock()
        used = tokens_today(self.store, user_id, now=now)
        if used < limit:
            return None
        reset = day_start(now) + 86400
        hours, rest = divmod(int(reset - now), 3600)
        return Refusal("quota", f"You have used {format_tokens(used)} of your {format_tokens(limit)}"
                       f" tokens for today. Your allowance resets at 00:00 UTC (in {hours} h "
                       f"{rest // 60} min); until then I can't send your questions to the model.")

    def refusal(self, user_id: str, channel_id: str) -> Refusal | None:
        return self.channel_refusal(channel_id) or self.quota_refusal(user_id)

    # -- per-channel settings (NULL in the store = the configured default) --------------

    def require_mention(self, channel_id: str) -> bool:
        value = self.controls.channel_settings(channel_id).get("require_mention")
        return self.settings.require_mention if value is None else bool(value)

    def show_reasoning(self, channel_id: str) -> bool:
        value = self.controls.channel_settings(channel_id).get("show_reasoning")
        return True if value is None else bool(value)

    def system_extra(self, channel_id: str) -> str:
        return str(self.controls.channel_settings(channel_id).get("system_extra") or "")

    def digest_tz(self, channel_id: str) -> str | None:
        value = self.controls.channel_settings(channel_id).get("digest_tz")
        return str(value) if value else None

    def digest_post_empty(self, channel_id: str) -> bool:
        value = self.controls.channel_settings(channel_id).get("digest_post_empty")
        return self.settings.digest_post_empty if value is None else bool(value)
