"""What one model call cost, recorded the same way for answers and digests.

Servers do not always report usage (some omit it when streaming, or report no reasoning
tokens): what they report is kept as reported, and an answer's prompt falls back to our
own estimate so quotas still count it. Usage queries read these rows (store/usage.py).
"""

from __future__ import annotations

import time
from typing import Any

from qwqbot.model.events import Completion


def model_call_row(completion: Completion, *, purpose: str, model: str, started: float,
                   prompt_estimate: int | None = None, error_kind: str | None = None,
                   **where: Any) -> dict[str, Any]:
    """The ``model_calls`` row of a call that began at wall time ``started``; ``where``:
    answer_id, user_id, channel_id as known."""
    usage = completion.usage
    return {
        **where,
        "purpose": purpose,
        "model": model,
        "prompt_tokens": usage.prompt_tokens if usage else prompt_estimate,
        "completion_tokens": usage.completion_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
        "total_tokens": usage.total_tokens if usage else None,
        "latency_ms": int((time.time() - started) * 1000),
        "finish_reason": completion.finish_reason,
        "error_kind": error_kind,
    }
