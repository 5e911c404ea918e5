"""The model's prompt for one answer, from the store: the Slack-facing half of
conversation.py (names, place, the asker's date, the channel's own instructions), which itself
stays pure. Each prompt gets a fresh random code for its turn markers (conversation.new_nonce),
so what one request showed the model is no key to the next.

Files shared in the thread come from the store, already read (``qwqbot.slack.files``), and
are placed into their turns within the budget by ``qwqbot.files.budget``; what became of each
is returned for the answer's footer.

Tokens are counted with the configured model's tokenizer (tokens.counter_for_model); each stored
message's count is read with it (the ``tokens`` column), so a long thread costs little tokenizing:
only a message that shows a name for an id is counted here, once per text (the counter's cache)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from qwqbot.config import Settings
from qwqbot.conversation import (
    FILE_RULES,
    TURN_RULES,
    MessageTooLongError,
    Place,
    Prompt,
    Turn,
    build_prompt,
    file_opening,
    new_nonce,
    turn_framing_tokens,
)
from qwqbot.files.budget import FileReport, Placement, StoredFile, file_room, place_files
from qwqbot.files.kinds import Kind, classify, label
from qwqbot.formatting import find_zone
from qwqbot.policy import Policy
from qwqbot.prompt_text import to_plain
from qwqbot.slack.channels import Channels
from qwqbot.slack.files import FILES_PER_ANSWER
from qwqbot.slack.people import People
from qwqbot.slacktext import author_name, mentioned_ids
from qwqbot.store import Store
from qwqbot.tokens import TokenCounter, counter_for_model, estimate_tokens

#: read this much more stored text than the budget holds before building the prompt: the counts
#: are exact, but a name can be fewer tokens than the id the store counted
READ_MARGIN = 1.0
BARE_MENTION_IN_THREAD = "(mentions you without a question: respond to the conversation above)"
BARE_MENTION_ALONE = "(mentions you without a question: greet them and say briefly what you can do)"
BARE_MENTION_WITH_FILES = ("(shares the files below without a question: say "
                           "briefly what they are and what stands out in them)")
#: Tokens of the system message beyond the prompts' own text (rules, date, place), at most.
SYSTEM_FRAMING_TOKENS = 150
#: Halvings of the files' room tried when the question does not fit with its files.
FILE_ROOM_TRIES = 4
NOT_TRIED = f"the bot reads at most {FILES_PER_ANSWER} files for one answer"


class _Enough:
    """Stops a newest-first read once the stored texts read, with the least framing each turn
    gets in the prompt (``framing`` for a person's), exceed ``limit`` tokens."""

    def __init__(self, limit: float, framing: int) -> None:
        self.limit = limit
        self.framing = framing
        self.tokens = 0

    def __call__(self, row: dict[str, Any]) -> bool:
        # A bot's own answer may merge into the message before it ("\n\n", a token); a
        # person's turn always has its two marker lines.
        framing = 1 if row["is_bot"] else self.framing
        # The stored count (the default model's tokens) is only a guide to how much to read:
        # the prompt is counted by the model's own counter, and a short read is read again.
        stored = row.get("tokens")
        self.tokens += (stored if stored is not None else estimate_tokens(row["text"] or "")) + framing
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
        #: the configured model's tokenizer (loaded now: the first answer should not wait for it)
        self.counter: TokenCounter = counter_for_model(settings.model)
        self.counter.units("warm up")

    @property
    def budget(self) -> int:
        """The configured room for a prompt: the context window less the answer's tokens."""
        return self.settings.context_tokens - self.settings.max_tokens

    async def for_thread(self, channel: str, thread_ts: str, request_ts: str,
                         asker: str, *, budget_tokens: int | None = None) -> Prompt:
        """The thread up to and including the post being answered (later posts are the
        conversation's future, not this answer's context), within ``budget_tokens`` (by
        default :attr:`budget`)."""
        prompt, _ = await self.for_thread_with_files(channel, thread_ts, request_ts, asker,
                                                     budget_tokens=budget_tokens)
        return prompt

    async def for_thread_with_files(self, channel: str, thread_ts: str, request_ts: str,
                                    asker: str, *, budget_tokens: int | None = None,
                                    ) -> tuple[Prompt, FileReport]:
        """``for_thread``, and what became of the files shared in the thread."""
        budget = self.budget if budget_tokens is None else budget_tokens
        margin = READ_MARGIN
        nonce = new_nonce()
        framing = turn_framing_tokens(nonce, self.counter)
        while True:
            # Read newest-first until the texts with their framing more than fill the budget:
            # the prompt cannot show more than that.
            rows, total = self.store.thread_window(channel, thread_ts, request_ts,
                                                   enough=_Enough(budget * margin, framing))
            unseen = total - len(rows)
            prompt, files = await self._build(channel, rows, asker, unseen=unseen, budget=budget,
                                              nonce=nonce)
            # Done when everything was read, or the budget filled up before what was read ran
            # out (more rows could not be included anyway).
            if unseen == 0 or prompt.omitted > unseen:
                return prompt, files
            margin *= 2

    async def for_question(self, channel: str, question: str, asker: str, *,
                           budget_tokens: int | None = None) -> Prompt:
        """A private question: no thread, no memory."""
        row = {"ts": "0", "user_id": asker, "text": question, "is_bot": 0, "bot_id": None}
        prompt, _ = await self._build(
            channel, [row], asker, with_files=False,
            budget=self.budget if budget_tokens is None else budget_tokens)
        return prompt

    async def _build(self, channel: str, rows: list[dict[str, Any]], asker: str, *,
                     budget: int, unseen: int = 0, nonce: str | None = None,
                     with_files: bool = True) -> tuple[Prompt, FileReport]:
        authors = {r["user_id"] for r in rows if r["user_id"]}
        names = await self.people.names(
            authors | {asker} | mentioned_ids(r["text"] for r in rows if "<@" in r["text"]))
        turns = []
        for r in rows:  # runs for every message a long thread's prompt may show: kept lean
            me = self._is_self(r)
            turns.append(Turn(author=author_name(r, names, from_self=me, bot_name=self.bot_name),
                              text=r["text"], from_self=me, ts=r["ts"], tokens=r.get("tokens")))
        files = self._stored_files(channel, rows) if with_files else []
        if turns and not to_plain(turns[-1].text, names, bot_user_id=self.bot_user_id):
            # A bare "@qwqbot": asked to weigh in on the thread (or its files), or saying hello.
            ask = BARE_MENTION_IN_THREAD if len(turns) > 1 else BARE_MENTION_ALONE
            if any(f.ts == turns[-1].ts for f in files):
                ask = BARE_MENTION_WITH_FILES
            turns[-1] = Turn(author=turns[-1].author, text=ask, from_self=False, ts=turns[-1].ts)
        extra = self.policy.system_extra(channel) if self.policy else ""
        today, place = self._today(asker), await self._place(channel, names.get(asker))
        nonce = nonce or new_nonce()

        def build(shown: list[Turn]) -> Prompt:
            return build_prompt(
                shown, names=names, bot_user_id=self.bot_user_id,
                system_prompt=self.settings.system_prompt, today=today, extra_system=extra,
                place=place, budget_tokens=budget, unseen=unseen, nonce=nonce,
                counter=self.counter)

        if not files:  # most prompts: nothing to place, nothing to size
            return build(turns), FileReport()
        count = self.counter.tokens
        room = file_room(budget, fixed_tokens=count(
            self.settings.system_prompt + extra + TURN_RULES + FILE_RULES) + SYSTEM_FRAMING_TOKENS,
            question_tokens=count(turns[-1].text) + turn_framing_tokens(nonce, self.counter))
        for attempt in range(FILE_ROOM_TRIES + 1):
            placement = place_files(files, room=room if attempt < FILE_ROOM_TRIES else 0,
                                    question_ts=turns[-1].ts)
            try:
                prompt = build([replace(t, files=tuple(placement.by_ts.get(t.ts, ())))
                                for t in turns])
            except MessageTooLongError:
                # The estimate of the room was too kind (a long system prompt, say): the
                # files get less, and at last none; the question alone decides then.
                if attempt == FILE_ROOM_TRIES:
                    raise
                room //= 2
                continue
            return prompt, _report(placement, prompt, nonce)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _stored_files(self, channel: str, rows: list[dict[str, Any]]) -> list[StoredFile]:
        """The files of the people's messages in ``rows``, as the store holds them."""
        ts = [r["ts"] for r in rows if not self._is_self(r)]
        files: list[StoredFile] = []
        for f in self.store.message_files(channel, ts):
            name, filetype = str(f["name"] or f["file_id"]), str(f["filetype"] or "")
            kind: Kind = f["kind"] or classify(name=name, filetype=filetype,
                                               mimetype=str(f["mimetype"] or ""))
            unseen = kind in ("image", "media")
            if f["status"] == "read" and f["text"]:
                files.append(StoredFile(f["ts"], name, label(kind, filetype=filetype, name=name),
                                        f["text"], partial=bool(f["partial"])))
                continue
            reason = str(f["reason"] or "") or NOT_TRIED
            files.append(StoredFile(f["ts"], name, label(kind, filetype=filetype, name=name),
                                    None, reason=reason, unseen=unseen))
        return files

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


def _report(placement: Placement, prompt: Prompt, nonce: str) -> FileReport:
    """What became of the files, once the prompt is built: a file placed in a turn that the
    prompt then left out for the budget was not read after all."""
    sent = "\n".join(m["content"] for m in prompt.messages)
    missing = [f.number for shared in placement.by_ts.values() for f in shared
               if f.text is not None and file_opening(nonce, f.number) not in sent]
    return placement.report(left_out=missing)
