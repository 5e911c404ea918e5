"""Ceilings on how much of one model response the bot will read and keep.

A server that ignores ``max_tokens`` can stream reasoning for as long as the total timeout
allows, hundreds of megabytes of it; an error page or a non-streamed answer can be as large.
Everything the client reads is bounded here, in proportion to the ``max_tokens`` the bot
asked for, so a runaway server costs a cut-off answer (told to the user, with Retry), not the
machine's memory and disk.

Token figures: QwQ-32B has a 131,072-token context and its card recommends 32,768 output
tokens (https://huggingface.co/Qwen/QwQ-32B); a token of English or code is about four
characters. Eight characters per token is twice that, so an answer that honestly stays
within ``max_tokens`` never reaches the ceiling, while one that runs past it is stopped at a
small multiple of what was asked for (256 Ki characters at the default 32,768 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwqbot.model.events import AnswerDelta, ModelEvent, ReasoningDelta

#: characters of reasoning + answer allowed per requested token (about 2x a real token)
CHARS_PER_TOKEN = 8
#: an error body longer than this is not read further: what a user is shown is 200 chars
ERROR_BODY_CAP = 64 * 1024
#: SSE events allowed per requested token: servers send one per token, plus a few (role,
#: finish, usage, split reasoning/content deltas); this only stops a stream of empty deltas
EVENTS_PER_TOKEN = 4
#: bytes of one event's envelope (id, model, choices, usage: null ...) allowed on average
BYTES_PER_EVENT = 512
#: worst-case bytes per character once JSON-escaped (a non-BMP character as two ``\\uXXXX``)
BYTES_PER_CHAR = 12
_SLACK_EVENTS = 256
_SLACK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """What one response may amount to; all derived from the requested ``max_tokens``."""

    chars: int
    """reasoning + answer characters kept; past this the answer counts as cut off"""
    events: int
    """SSE events read"""
    stream_bytes: int
    """bytes of an SSE body read"""
    event_bytes: int
    """bytes of one SSE event (or one non-streamed JSON answer)"""

    @classmethod
    def for_max_tokens(cls, max_tokens: int) -> ResponseLimits:
        tokens = max(1, max_tokens)
        chars = tokens * CHARS_PER_TOKEN
        events = tokens * EVENTS_PER_TOKEN + _SLACK_EVENTS
        return cls(
            chars=chars,
            events=events,
            stream_bytes=events * BYTES_PER_EVENT + chars * BYTES_PER_CHAR,
            event_bytes=chars * BYTES_PER_CHAR + _SLACK_BYTES,
        )


class LimitExceeded(Exception):
    """The server sent more than a ``ResponseLimits`` allows; ``what`` says which."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class CharBudget:
    """Passes reasoning and answer text through until ``chars`` have gone by, then trims."""

    def __init__(self, chars: int) -> None:
        self.left = chars
        self.exhausted = False

    def take(self, events: list[ModelEvent]) -> list[ModelEvent]:
        """``events`` with text past the budget cut away; sets ``exhausted`` when it ran out."""
        out: list[ModelEvent] = []
        for event in events:
            if isinstance(event, ReasoningDelta | AnswerDelta):
                if self.exhausted:
                    continue
                if len(event.text) > self.left:
                    self.exhausted = True
                    if self.left:
                        out.append(type(event)(event.text[: self.left]))
                    self.left = 0
                    continue
                self.left -= len(event.text)
            out.append(event)
        return out
