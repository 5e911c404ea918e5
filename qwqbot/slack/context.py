"""The model's prompt for one answer, from the store: the Slack-facing half of
conversation.py (names, place, the asker's date, the channel's own instructions), which itself
stays pure. Each prompt gets a fresh random code for its turn markers (conversation.new_nonce),
so what one request showed the model is no key to the next."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from qwqbot.config import Settings
from qwqbot.conversation import (
    TURN_FRAMING_TOKENS,
    Place,
    Prompt,
    Turn,
    build_prompt,
    new_nonce,
    to_plain,
)
from qwqbot.formatting import find_zone
from qwqbot.policy import Policy
from qwqbot.slack.channels import Channels
from qwqbot.slack.people import People
from qwqbot.slacktext import author_name, mentioned_ids
from qwqbot.store import Store
from qwqbot.tokens import estimate_tokens

#: read this much more raw text than the budget holds before building the prompt
READ_MARGIN = 1.1
BARE_MENTION_IN_THREAD = "(mentions you without a question: respond to the conversation above)"
BARE_MENTION_ALONE = "(mentions you without a question: greet them and say briefly what you can do)"


class _Enough:
    """Stops a newest-first read once the raw texts read, with the least framing each turn
    gets in the prompt, exceed ``limit`` tokens."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.tokens = 0

    def __call__(self, row: dict[str, Any]) -> bool:
        # A bot's own answer may merge into the message before it ("\n\n", a token); a
        # person's turn always has its two marker lines.
        framing = 1 if row["is_bot"] else TURN_FRAMING_TOKENS
        self.tokens += estimate_tokens(row["text"] or "") + framing
        return self.tokens > self.limit


class ContextBuilder:
    def __init__(self, *, settings: Settings, store: Store, channels: Channels,
                 people: People, bot_user_id: str, bot_id: str, bot_name: str,
                 policy: Policy | None = None) -> None:
        self.settings = settings
        self.store = store
        self.channels = channels
        self.people = people
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.policy = policy

    async def for_thread(self, channel: str, thread_ts: str, request_ts: str,
                         asker: str) -> Prompt:
        """The thread up to and including the post being answered (later posts are the
        conversation's future, not this answer's context)."""
        budget = self.settings.context_tokens - self.settings.max_tokens
        margin = READ_MARGIN
        while True:
            # Read newest-first until the raw texts alone more than fill the budget: names
            # and framing only add tokens, so the prompt cannot use more than that.
            rows, total = self.store.thread_window(channel, thread_ts, request_ts,
                                                   enough=_Enough(budget * margin))
            unseen = total - len(rows)
            prompt = await self._build(channel, rows, asker, unseen=unseen)
            # Done when everything was read, or the budget filled up before what was read ran
            # out (more rows could not be included anyway).
            if unseen == 0 or prompt.omitted > unseen:
                return prompt
            margin *= 2

    async def for_question(self, channel: str, question: str, asker: str) -> Prompt:
        """A private question: no thread, no memory."""
        row = {"ts": "0", "user_id": asker, "text": question, "is_bot": 0, "bot_id": None}
        return await self._build(channel, [row], asker)

    async def _build(self, channel: str, rows: list[dict[str, Any]], asker: str, *,
                     unseen: int = 0) -> Prompt:
        authors = {r["user_id"] for r in rows if r["user_id"]}
        names = await self.people.names(authors | {asker} | mentioned_ids(r["text"] for r in rows))
        turns = [Turn(author=author_name(r, names, from_self=self._is_self(r), bot_name=self.bot_name),
                      text=r["text"], from_self=self._is_self(r), ts=r["ts"]) for r in rows]
        if turns and not to_plain(turns[-1].text, names, bot_user_id=self.bot_user_id):
            # A bare "@qwqbot": asked to weigh in on the thread, or just saying hello.
            ask = BARE_MENTION_IN_THREAD if len(turns) > 1 else BARE_MENTION_ALONE
            turns[-1] = Turn(author=turns[-1].author, text=ask, from_self=False, ts=turns[-1].ts)
        return build_prompt(
            turns, names=names, bot_user_id=self.bot_user_id,
            system_prompt=self.settings.system_prompt, today=self._today(asker),
            extra_system=self.policy.system_extra(channel) if self.policy else "",
            place=await self._place(channel, names.get(asker)),
            budget_tokens=self.settings.context_tokens - self.settings.max_tokens, unseen=unseen,
            nonce=new_nonce())

    def _is_self(self, row: dict[str, Any]) -> bool:
        return bool(row["is_bot"]) and (row["user_id"] == self.bot_user_id
                                        or row["bot_id"] == self.bot_id)

    def _today(self, user_id: str) -> date:
        """Today where the asker is: "what's on today?" at 23:30 in Tokyo is not UTC's today."""
        row = self.store.users([user_id], fresh_after=0).get(user_id)
        # An unknown zone leaves this machine's own date, as datetime.now() without one does.
        return datetime.now(find_zone(row.get("tz") if row else None)).date()

    async def _place(self, channel: str, user_name: str | None) -> Place:
        # Channels caches conversations.info and asks once per channel while in flight.
        info = await self.channels.info(channel) or {"is_im": channel.startswith("D")}
        if info.get("is_im"):
            return Place("dm", with_user=user_name)
        if info.get("is_mpim"):
            return Place("group_dm")
        return Place("private_channel" if info.get("is_private") else "channel",
                     name=info.get("name"))
