"""How the prompt's room is shared among the files of a thread, and what the answer's footer
says about each. Pure.

Files are counted with the same token estimate as messages (``qwqbot.tokens``) and go into
the prompt inside the turn of the person who shared them, so ``conversation.build_prompt``
prices them like any text. What this module decides is how much of each file goes in, so
that the question (with its files) always fits next to the start of the conversation:

1. The room: the context budget less the system message, the question's own text and a
   reserve for the conversation before it (``CONVERSATION_RESERVE`` tokens, or a quarter of
   the budget if that is less).
2. The question's own files share the room first, evenly: a small file is given all it needs
   and what it leaves over goes to the others ("water-filling"), so one huge log cannot
   crowd out the small config file shared with it.
3. Files shared earlier in the thread get what is left, newest first, each whole or cut.
4. A file given less than it needs is cut at a readable boundary (``cut.cut_to_tokens``) and
   the model is told so; one that would get less than ``MIN_FILE_TOKENS`` is left out and
   the footer says so. Files that could not be read get one line each in the prompt (so the
   model knows something was shared) and, for the question's own files, in the footer (so
   the person knows why; a file shared earlier was told about in the answer to its message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qwqbot.files.cut import cut_to_tokens
from qwqbot.files.shared import SharedFile
from qwqbot.tokens import estimate_tokens

#: Tokens kept for the conversation before the question when files fill the prompt.
CONVERSATION_RESERVE = 4_000
#: A file is cut to no less than this; with less room it is left out.
MIN_FILE_TOKENS = 200
#: The marker lines around a file, its type and a cut note, beyond its name (an upper bound).
FILE_FRAMING_TOKENS = 60
UNSEEN_NOTE = "you cannot see images, audio or video: only text reaches you"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file of one stored message, as read (or not) by the bot."""

    ts: str  # the message it was shared with
    name: str
    label: str
    text: str | None  # None: not readable, see reason
    reason: str = ""  # why not, in words for people ("it is not a text file")
    unseen: bool = False  # an image, audio or video: the model cannot see or hear them
    partial: bool = False  # only the file's beginning was read (a size cap)


@dataclass
class FileReport:
    """What became of each file, for the answer's footer (names as the person gave them)."""

    read: list[str] = field(default_factory=list)
    cut: list[tuple[str, str]] = field(default_factory=list)  # (name, how much is shown)
    skipped: list[str] = field(default_factory=list)  # no room left in the prompt
    unread: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    unseen: list[str] = field(default_factory=list)  # images, audio, video

    def __bool__(self) -> bool:
        return bool(self.read or self.cut or self.skipped or self.unread or self.unseen)


@dataclass(frozen=True, slots=True)
class Outcome:
    number: int  # the file's number in the prompt (0: not in it at all)
    name: str
    status: str  # read | cut | skipped | unread | unseen
    detail: str = ""  # cut: how much is shown; unread: why
    own: bool = True  # shared with the question itself (not earlier in the thread)


@dataclass(frozen=True, slots=True)
class Placement:
    """The files to render into each turn (by the message's ts), and what became of each."""

    by_ts: dict[str, list[SharedFile]]
    outcomes: list[Outcome]

    def report(self, left_out: Sequence[int] = ()) -> FileReport:
        """The footer's report. ``left_out``: numbers of files whose turns the prompt left
        out for the budget after all: they count as skipped, not read."""
        gone = set(left_out)
        report = FileReport()
        for o in self.outcomes:
            if o.status in ("read", "cut") and o.number in gone:
                report.skipped.append(o.name)
            elif o.status == "read":
                report.read.append(o.name)
            elif o.status == "cut":
                report.cut.append((o.name, o.detail))
            elif o.status == "skipped":
                report.skipped.append(o.name)
            elif not o.own:
                continue  # an earlier file that could not be read: told in its own answer
            elif o.status == "unseen":
                report.unseen.append(o.name)
            else:
                report.unread.append((o.name, o.detail))
        return report


def file_room(budget: int, *, fixed_tokens: int, question_tokens: int) -> int:
    """Tokens the files may take: ``budget`` less the system message (``fixed_tokens``), the
    question's text and the conversation's reserve."""
    reserve = min(CONVERSATION_RESERVE, budget // 4)
    return max(0, budget - fixed_tokens - question_tokens - reserve)


def _need(file: StoredFile) -> int:
    return estimate_tokens(file.text or "") + estimate_tokens(file.name) + FILE_FRAMING_TOKENS


def _lines(text: str) -> int:
    return text.count("\n") + 1


def _shares(needs: Sequence[int], room: int) -> list[int]:
    """Water-filling: each gets its need or an even share of what is left, smallest first."""
    given = [0] * len(needs)
    left = room
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    for position, i in enumerate(order):
        share = left // (len(order) - position)
        given[i] = min(needs[i], share)
        left -= given[i]
    return given


def place_files(files: Sequence[StoredFile], *, room: int, question_ts: str) -> Placement:
    """Which files (and how much of each) go into the prompt within ``room`` tokens.

    ``files``: in thread order (oldest message first, then as shared); those of the message
    ``question_ts`` have first claim on the room."""
    readable = [i for i, f in enumerate(files) if f.text]
    question = [i for i in readable if files[i].ts == question_ts]
    earlier = sorted((i for i in readable if files[i].ts != question_ts),
                     key=lambda i: files[i].ts, reverse=True)
    given = dict(zip(question, _shares([_need(files[i]) for i in question], room), strict=True))
    left = room - sum(given.values())
    for i in earlier:
        share = min(_need(files[i]), left)
        if share >= MIN_FILE_TOKENS or share == _need(files[i]):
            given[i] = share
            left -= share

    by_ts: dict[str, list[SharedFile]] = {}
    outcomes: list[Outcome] = []
    number = 0
    for i, f in enumerate(files):
        if f.text is None:
            number += 1
            status = "unseen" if f.unseen else "unread"
            shared = SharedFile(number, f.name, f.label, None, UNSEEN_NOTE if f.unseen else f.reason)
            outcomes.append(Outcome(number, f.name, status, "" if f.unseen else f.reason,
                                    own=f.ts == question_ts))
            by_ts.setdefault(f.ts, []).append(shared)
            continue
        share, need = given.get(i, 0), _need(f)
        if share < need and share < MIN_FILE_TOKENS:
            outcomes.append(Outcome(0, f.name, "skipped"))
            continue
        number += 1
        text, was_cut = f.text, False
        if share < need:
            text, was_cut = cut_to_tokens(f.text, share - (need - estimate_tokens(f.text)))
        if was_cut or f.partial:
            total = "" if f.partial else f" of {_lines(f.text):,}"
            longer = " (the file is longer)" if f.partial else ""
            how = f"the first {_lines(text):,}{total} lines{longer}"
            outcomes.append(Outcome(number, f.name, "cut", how))
            note = f"shortened to fit: only {how} are shown"
        else:
            outcomes.append(Outcome(number, f.name, "read"))
            note = ""
        by_ts.setdefault(f.ts, []).append(SharedFile(number, f.name, f.label, text, note))
    return Placement(by_ts=by_ts, outcomes=outcomes)
