"""A server's "the prompt is too long for my context window" answer, recognised and read.

Servers word it differently, and most state numbers worth reading: the window (``context_limit``),
sometimes the most a prompt alone may have (``prompt_limit``), and their own count of the refused
prompt (``prompt_tokens``). With those the bot can trim its prompt to what *that* server accepts and
ask again once, instead of showing the user a generic refusal. Wordings read here, by source:

- vLLM (https://github.com/vllm-project/vllm, ``entrypoints/openai/serving_engine.py``): "This model's
  maximum context length is 32768 tokens. However, you requested 40000 tokens (39000 in the messages,
  1000 in the completion). Please reduce the length of the messages or completion."; newer releases
  "... is too large: 32768. This model's maximum context length is 40960 tokens and your request has
  9000 input tokens (32768 > 40960 - 9000)." and "The decoder prompt (length 140000) is longer than the
  maximum model length of 131072."
- OpenAI (https://platform.openai.com/docs/guides/error-codes), code ``context_length_exceeded``:
  "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
- OpenRouter (https://openrouter.ai/docs/api-reference/errors): "This endpoint's maximum context length
  is 131072 tokens. However, you requested about 140000 tokens (139000 of text input, 1000 in the
  output)."
- AI/ML API (https://docs.aimlapi.com/): ``{"statusCode": 400, "message": ...}`` carrying the upstream
  wording, one of the above.
- Hugging Face TGI, as Together serves it: "`inputs` tokens + `max_new_tokens` must be <= 32769. Given:
  40000 `inputs` tokens and 1000 `max_new_tokens`"; DashScope: "Range of input length should be [1,
  129024]"; llama.cpp's server: "request (40000 tokens) exceeds the available context size (32768
  tokens)"; Mistral: "Prompt contains 66385 tokens, too large for model with 32768 maximum context
  length".

The whole body is searched (numbers may sit in a nested provider error, as OpenRouter passes them
on), never only the shortened message a user is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Overflow", "read_overflow"]

_N = r"(\d[\d,]*)"
# Any of these says the refusal is about length; the numbers are read separately.
_SAYS_TOO_LONG = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|maximum model length|context window"
    r"|available context size|context length of|range of input length|reduce the length of the messages"
    r"|`inputs` tokens \+ `max_new_tokens`|prompt is too long|input is too long"
    r"|is too long and exceeds limit",
    re.IGNORECASE,
)
_CONTEXT_LIMIT = [re.compile(p, re.IGNORECASE) for p in (
    rf"maximum context length is (?:about )?{_N}",
    rf"maximum model length of {_N}",
    rf"must be <= {_N}",
    rf"available context size \({_N} tokens",
    rf"context length of (?:only )?{_N}",
    rf"{_N} maximum context length",
    rf"exceeds limit of {_N}",
)]
_PROMPT_LIMIT = [re.compile(p, re.IGNORECASE) for p in (
    rf"range of input length should be \[\s*\d+\s*,\s*{_N}\s*\]",
)]
_PROMPT_TOKENS = [re.compile(p, re.IGNORECASE) for p in (
    rf"{_N} (?:tokens )?in the messages",
    rf"messages resulted in {_N} tokens",
    rf"your request has {_N} input tokens",
    rf"\({_N} of text input",
    rf"Given: {_N} `inputs` tokens",
    rf"prompt \(length {_N}\)",
    rf"input prompt \({_N} tokens\)",
    rf"request \({_N} tokens\)",
    rf"prompt contains {_N} tokens",
)]
#: Statuses a length refusal comes with: 400 mostly, 413 and 422 from some proxies and FastAPI.
STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Overflow:
    """What a length refusal stated; None where it did not say."""

    context_limit: int | None
    prompt_limit: int | None
    prompt_tokens: int | None


def _first(patterns: list[re.Pattern[str]], text: str) -> int | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m is not None:
            return int(m[1].replace(",", ""))
    return None


def read_overflow(status: int, body: bytes | str) -> Overflow | None:
    """The numbers of a context-length refusal, or None when ``status``/``body`` is not one."""
    if status not in STATUSES:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not _SAYS_TOO_LONG.search(text):
        return None
    return Overflow(context_limit=_first(_CONTEXT_LIMIT, text), prompt_limit=_first(_PROMPT_LIMIT, text),
                    prompt_tokens=_first(_PROMPT_TOKENS, text))
