"""`qwqbot ask`: one question, streamed to a terminal as a person wants to watch it.

While the model thinks, stderr shows a live line (elapsed seconds, reasoning size) redrawn
in place; the answer streams to stdout, so ``qwqbot ask ... > answer.md`` captures only the
answer. ``--reasoning`` prints the reasoning as it arrives, dimmed and framed, before the
answer. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO

from qwqbot.config import Settings
from qwqbot.errors import AnswerCutOffError, ModelError
from qwqbot.model.client import ModelClient
from qwqbot.model.events import AnswerDelta, Completion, Finish, ModelEvent, ReasoningDelta

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
DIM, RESET, BOLD = "\033[2m", "\033[0m", "\033[1m"


class AskView:
    """Turns model events into terminal output. Pure over its two streams and a clock."""

    def __init__(self, out: TextIO, err: TextIO, *, show_reasoning: bool, live: bool,
                 color: bool) -> None:
        self.out, self.err = out, err
        self.show_reasoning = show_reasoning
        self.live = live
        self.color = color
        self.started = time.monotonic()
        self._spin = 0
        self._status_shown = False
        self._reasoning_open = False
        self._answer_started = False
        #: the answer so far, as the last event left it (the ticker redraws from it)
        self.latest = Completion()

    def _style(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tick(self, completion: Completion) -> None:
        """Redraw the live status line (called ~10 times a second while thinking)."""
        if not self.live or self._answer_started or self.show_reasoning:
            return
        self._spin = (self._spin + 1) % len(SPINNER)
        size = completion.reasoning_chars
        detail = f" · {size:,} characters of reasoning" if size else ""
        line = f"{SPINNER[self._spin]} Thinking… {self.elapsed():.0f} s{detail}"
        self.err.write("\r\033[K" + self._style(DIM, line))
        self.err.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.err.write("\r\033[K")
            self.err.flush()
            self._status_shown = False

    def event(self, event: ModelEvent, completion: Completion) -> None:
        self.latest = completion
        if isinstance(event, ReasoningDelta) and self.show_reasoning:
            if not self._reasoning_open:
                self.out.write(self._style(DIM, "┌─ reasoning ─────────────\n"))
                self._reasoning_open = True
            self.out.write(self._style(DIM, event.text))
            self.out.flush()
        elif isinstance(event, AnswerDelta):
            self._start_answer()
            self.out.write(event.text)
            self.out.flush()
        elif isinstance(event, Finish) and event.reclassified and completion.answer:
            # The output never closed a think block: it was the answer all along.
            self._start_answer()
            self.out.write(completion.answer)
        if not isinstance(event, AnswerDelta):
            self.tick(completion)

    def _start_answer(self) -> None:
        if self._answer_started:
            return
        self._clear_status()
        if self._reasoning_open:
            footer = f"\n└─ thought for {self.elapsed():.0f} s ──────────\n\n"
            self.out.write(self._style(DIM, footer))
            self._reasoning_open = False
        self._answer_started = True

    def _end_output(self) -> None:
        """Clear the status line, close an open reasoning frame, end the answer's last line."""
        self._clear_status()
        if self._reasoning_open:
            self.out.write(self._style(DIM, "\n└─────────────────────────\n"))
        if self._answer_started:
            self.out.write("\n")
        self.out.flush()

    def done(self, completion: Completion) -> None:
        self._end_output()
        usage = completion.usage
        parts = [f"{self.elapsed():.0f} s"]
        if usage and usage.reasoning_tokens:
            parts.append(f"{usage.reasoning_tokens:,} reasoning tokens")
        if usage and usage.completion_tokens:
            parts.append(f"{usage.completion_tokens:,} completion tokens")
        elif completion.reasoning_chars:
            parts.append(f"{completion.reasoning_chars:,} characters of reasoning")
        self.err.write(self._style(DIM, "(" + " · ".join(parts) + ")") + "\n")
        self.err.flush()

    def error(self, err: ModelError) -> None:
        self._end_output()
        self.err.write(self._style(BOLD, "qwqbot: ") + err.one_line() + "\n")
        self.err.flush()


async def ask(settings: Settings, question: str, *, show_reasoning: bool,
              out: TextIO = sys.stdout, err: TextIO = sys.stderr,
              client: ModelClient | None = None) -> int:
    live = err.isatty()
    color = live and out.isatty() and "NO_COLOR" not in os.environ
    view = AskView(out, err, show_reasoning=show_reasoning, live=live, color=color)
    messages = [{"role": "system", "content": settings.system_prompt},
                {"role": "user", "content": question}]
    own_client = client is None
    model = client or ModelClient.from_settings(settings)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.1)
            view.tick(view.latest)

    tick_task = asyncio.create_task(ticker()) if live else None
    try:
        completion = await model.complete(messages, on_event=view.event)
    except AnswerCutOffError as exc:
        view.error(exc)
        return 3
    except ModelError as exc:
        view.error(exc)
        return 1
    finally:
        if tick_task:
            tick_task.cancel()
        if own_client:
            await model.aclose()
    if not completion.answer:
        view.done(completion)
        err.write("qwqbot: the model finished without an answer (only reasoning). "
                  "Try again or rephrase.\n")
        return 1
    view.done(completion)
    return 0
