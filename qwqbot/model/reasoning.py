"""Incremental splitter: model output -> reasoning deltas and answer deltas.

Where reasoning arrives depends on the server: inline ``<think>...</think>`` in ``content``
(AI/ML API, https://docs.aimlapi.com/api-references/text-models-llm/alibaba-cloud/qwq-32b),
or a separate ``reasoning_content`` / ``reasoning`` field (vLLM with a reasoning parser,
https://docs.vllm.ai/en/latest/features/reasoning_outputs.html; also DeepSeek, DashScope,
OpenRouter, Ollama). ``ReasoningSplitter.feed`` takes one streamed ``delta`` or one whole
``message``, which carry the same fields, so both kinds are told apart in this module only.
QwQ's chat template pre-fills ``<think>\\n``, so its output usually *lacks the opening tag*
and only contains ``</think>`` (usage guidelines, https://huggingface.co/Qwen/QwQ-32B).

Rules, chosen on purpose:
- Content that does not start with a tag is provisional reasoning, because of that pre-fill,
  unless a reasoning field was already seen (then the server has split for us and content
  is the answer).
- ``</think>`` ends reasoning; whitespace right after it is dropped.
- In the answer, ``<think>`` opens another reasoning block, except inside a code fence or an
  inline code span (a model explaining the tag must be able to show it).
- A stray tag never reaches the user: lone ``</think>`` in the answer and ``<think>`` inside
  reasoning are dropped.
- No closing tag at all: vLLM's parser calls that all reasoning; Qwen's evaluation code
  (https://github.com/QwenLM/QwQ) calls it all answer. We decide by how the stream ended.
  ``finish_reason: length`` means the model ran out of tokens mid-thought (QwQ's known failure
  mode) - it stays reasoning and the caller reports the cut-off. Any other ending means a
  model or server that does not think in tags: the text is the answer, signalled by
  ``Finish(reclassified=True)``.

The result depends only on the text, never on how it was chunked: a tag split across SSE
chunks is held back (at most ``len("</think>") - 1`` characters) until it can be decided.
"""

from __future__ import annotations

import re

from qwqbot.model.events import AnswerDelta, Finish, ModelEvent, ReasoningDelta

OPEN = "<think>"
CLOSE = "</think>"
_TAGS = (OPEN, CLOSE)
#: the fields servers with a reasoning parser put the reasoning in, read in this order
REASONING_FIELDS = ("reasoning_content", "reasoning")

#: One whole think block; non-greedy, so two blocks don't swallow the answer between them.
THINK_BLOCK = re.compile(re.escape(OPEN) + ".*?" + re.escape(CLOSE), re.DOTALL)


def without_tags(text: str) -> str:
    """``text`` with no reasoning tag left, even one that removing another would create."""
    while OPEN in text or CLOSE in text:
        text = text.replace(OPEN, "").replace(CLOSE, "")
    return text

_START, _REASONING_START, _REASONING = "start", "reasoning_start", "reasoning"
_ANSWER_START, _ANSWER = "answer_start", "answer"
# After a tag, whitespace is dropped until real text arrives (in a *_START state), so the
# result cannot depend on whether that whitespace came in the tag's chunk or the next one.


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a tag."""
    for n in range(min(len(text), len(CLOSE) - 1), 0, -1):
        tail = text[-n:]
        if OPEN.startswith(tail) or CLOSE.startswith(tail):
            return n
    return 0


def in_code(text: str) -> bool:
    """Whether the end of Markdown ``text`` is inside a fenced block or an inline code span."""
    in_fence = False
    lines = text.split("\n")
    for line in lines[:-1]:
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
    current = lines[-1]
    if in_fence or current.lstrip().startswith(("```", "~~~")):
        return True
    return current.count("`") % 2 == 1


class ReasoningSplitter:
    """Feed one response's deltas in order; collect the events each call returns."""

    def __init__(self) -> None:
        self._state = _START
        self._held = ""
        self._field_seen = False
        self._tag_seen = False
        # Answer text so far, only consulted when a tag candidate shows up in the answer.
        self._answer_parts: list[str] = []

    def feed(self, part: object) -> list[ModelEvent]:
        """The events of one choice's ``delta`` (a stream chunk) or ``message`` (a JSON
        answer): its reasoning fields first, then its ``content``. Anything that is not a
        JSON object, and fields that are not strings, carry nothing."""
        if not isinstance(part, dict):
            return []
        events: list[ModelEvent] = []
        for name in REASONING_FIELDS:
            text = part.get(name)
            if isinstance(text, str):
                events += self.feed_reasoning_field(text)
        content = part.get("content")
        if isinstance(content, str):
            events += self.feed_content(content)
        return events

    def feed_reasoning_field(self, text: str) -> list[ModelEvent]:
        if not text:
            return []
        self._field_seen = True
        return [ReasoningDelta(text)]

    def feed_content(self, text: str) -> list[ModelEvent]:
        if not text:
            return []
        events: list[ModelEvent] = []
        self._run(self._held + text, events, final=False)
        return events

    def finish(self, reason: str | None) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        if self._held:
            self._run(self._held, events, final=True)
        reclassified = (
            not self._tag_seen
            and not self._field_seen
            and reason != "length"
            and self._state in (_REASONING_START, _REASONING)
        )
        events.append(Finish(reason, reclassified=reclassified))
        return events

    # -- the state machine -------------------------------------------------------------

    def _run(self, text: str, out: list[ModelEvent], *, final: bool) -> None:
        self._held = ""
        while text:
            if self._state == _START:
                text = self._start(text, final)
            elif self._state == _REASONING:
                text = self._reasoning(text, out, final)
            elif self._state in (_REASONING_START, _ANSWER_START):
                text = text.lstrip()
                if text:
                    self._state = _REASONING if self._state == _REASONING_START else _ANSWER
            else:
                text = self._answer(text, out, final)

    def _start(self, text: str, final: bool) -> str:
        rest = text.lstrip()
        if not rest:
            if not final:
                self._held = text
            return ""
        if not final and len(rest) < len(CLOSE) and any(t.startswith(rest) for t in _TAGS):
            self._held = text  # could still become a tag
            return ""
        if rest.startswith(OPEN):
            self._tag_seen = True
            self._state = _REASONING_START
            return rest[len(OPEN):]
        if rest.startswith(CLOSE):
            self._tag_seen = True
            self._state = _ANSWER_START
            return rest[len(CLOSE):]
        self._state = _ANSWER_START if self._field_seen else _REASONING
        return rest

    def _reasoning(self, text: str, out: list[ModelEvent], final: bool) -> str:
        i_open, i_close = text.find(OPEN), text.find(CLOSE)
        hits = [i for i in (i_open, i_close) if i >= 0]
        if hits:
            i = min(hits)
            self._emit(out, ReasoningDelta(text[:i]))
            self._tag_seen = True
            if i == i_close:
                self._state = _ANSWER_START
                return text[i + len(CLOSE):]
            return text[i + len(OPEN):]  # a stray <think> inside reasoning: drop it
        keep = 0 if final else _partial_tag_suffix(text)
        self._emit(out, ReasoningDelta(text[: len(text) - keep]))
        self._held = text[len(text) - keep:]
        return ""

    def _answer(self, text: str, out: list[ModelEvent], final: bool) -> str:
        start = 0
        while True:
            i_open, i_close = text.find(OPEN, start), text.find(CLOSE, start)
            hits = [i for i in (i_open, i_close) if i >= 0]
            if not hits:
                break
            i = min(hits)
            if in_code("".join(self._answer_parts) + text[:i]):
                start = i + 1  # a tag shown in code is content, not markup
                continue
            self._emit(out, AnswerDelta(text[:i]))
            self._tag_seen = True
            if i == i_open:
                self._state = _REASONING_START
                return text[i + len(OPEN):]
            return text[i + len(CLOSE):]  # a stray </think> in the answer: drop it
        keep = 0 if final else _partial_tag_suffix(text)
        self._emit(out, AnswerDelta(text[: len(text) - keep]))
        self._held = text[len(text) - keep:]
        return ""

    def _emit(self, out: list[ModelEvent], event: ReasoningDelta | AnswerDelta) -> None:
        if not event.text:
            return
        if isinstance(event, AnswerDelta):
            self._answer_parts.append(event.text)
        out.append(event)

