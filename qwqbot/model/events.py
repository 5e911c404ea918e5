"""Typed model output: a stream of events, and the Completion they add up to."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """End of the stream.

    ``reclassified`` is True when the output never closed a think block, was not cut off,
    and came with no reasoning field: the text streamed as provisional reasoning is then
    the answer (a model or server that does not reason). See reasoning.py.
    """

    reason: str | None
    reclassified: bool = False


ModelEvent = ReasoningDelta | AnswerDelta | Usage | Finish


@dataclass(slots=True)
class Completion:
    """Everything one model call produced, built incrementally by ``add``."""

    finish_reason: str | None = None
    usage: Usage | None = None
    # Parts are joined on demand: appending to a str per delta is quadratic on answers
    # with tens of thousands of deltas.
    _reasoning_parts: list[str] = field(default_factory=list, repr=False)
    _answer_parts: list[str] = field(default_factory=list, repr=False)

    def add(self, event: ModelEvent) -> None:
        if isinstance(event, ReasoningDelta):
            self._reasoning_parts.append(event.text)
        elif isinstance(event, AnswerDelta):
            self._answer_parts.append(event.text)
        elif isinstance(event, Usage):
            self.usage = event
        else:
            self.finish_reason = event.reason
            if event.reclassified:
                self._answer_parts = self._reasoning_parts + self._answer_parts
                self._reasoning_parts = []

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning_parts).strip()

    @property
    def answer(self) -> str:
        return "".join(self._answer_parts).strip()

    @property
    def reasoning_chars(self) -> int:
        return sum(len(p) for p in self._reasoning_parts)

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"
