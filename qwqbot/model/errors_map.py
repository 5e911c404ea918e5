"""HTTP answers of OpenAI-compatible servers -> qwqbot's model errors.

Error bodies differ between providers (``{"error": {"message": ...}}`` from OpenAI-style
servers, ``{"message": ..., "statusCode": ...}`` from AI/ML API, ``{"detail": ...}`` from
FastAPI-based ones, an HTML page from a proxy): ``server_message`` reads all of them. What a
server says is shown to users, so the API key is scrubbed from it first: a provider that
refuses a key may quote it back.
"""

from __future__ import annotations

import json
import re
import time
from email.utils import parsedate_to_datetime

from qwqbot.errors import (
    ModelAuthError,
    ModelBadRequestError,
    ModelContextLengthError,
    ModelCreditsError,
    ModelError,
    ModelNotFoundError,
    ModelOverloadedError,
    ModelRateLimitedError,
    ModelTimeoutError,
)
from qwqbot.model.context_length import read_overflow

_MAX_SHOWN = 200
_NOT_FOUND = re.compile(
    r"(model|deployment).{0,80}(not (be )?found|does not exist|not exist|unknown|not available"
    r"|unavailable|deprecated|not supported|invalid model)|no such model|model_not_found",
    re.IGNORECASE,
)


def server_message(body: bytes | str, *, secret: str | None = None) -> str:
    """The most useful short text in an error body, or '' when there is none; ``secret``
    (the API key) never appears in it."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    message = ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("code") or "")
        elif isinstance(err, str):
            message = err
        message = message or str(data.get("message") or data.get("detail") or "")
    elif text.lstrip().startswith("<"):
        message = ""  # an HTML page from a proxy says nothing a user can act on
    else:
        message = text
    if secret:
        # Before shortening, so that no prefix of the key survives a cut.
        message = message.replace(secret, "***")
    message = " ".join(message.split())
    if len(message) > _MAX_SHOWN:
        message = message[: _MAX_SHOWN - 1] + "…"
    return message


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _base_url_hint(base_url: str) -> str | None:
    """What to set AIML_API_BASE_URL to when it does not look like an OpenAI-compatible base
    URL, or None when it does. Such servers serve ``/v1/models`` and ``/v1/chat/completions``,
    and the client adds what comes after ``/v1`` itself."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")]
        return f"AIML_API_BASE_URL should end in /v1, without /chat/completions: try {url}."
    if not url.endswith("/v1"):
        return f"AIML_API_BASE_URL probably needs to end in /v1: try {url}/v1."
    return None


def error_for_status(
    status: int, body: bytes | str, *, model: str, base_url: str,
    retry_after: float | None = None, secret: str | None = None,
) -> ModelError:
    said = server_message(body, secret=secret)
    # A sentence of its own, so the hint that follows does not run on from the server's text.
    detail = f" The server said: {said}{'' if said.endswith(('.', '!', '?', '…')) else '.'}" if said else ""
    overflow = read_overflow(status, body)
    if overflow is not None:
        window = f" of {overflow.context_limit:,} tokens" if overflow.context_limit else ""
        return ModelContextLengthError(
            f"The model server refused the conversation as longer than its context window{window} "
            f"({status}).{detail}",
            hint="Ask the bot's operator to set QWQBOT_CONTEXT_TOKENS to the server's context window.",
            status=status, context_limit=overflow.context_limit, prompt_limit=overflow.prompt_limit,
            prompt_tokens=overflow.prompt_tokens)
    if status == 401:
        return ModelAuthError(
            f"The model server rejected the API key (401).{detail}",
            hint="Check AIML_API_KEY: it is missing, mistyped or revoked.", status=status)
    if status in (402, 403):
        return ModelCreditsError(
            f"The model server refused the request ({status}): the account is out of credits "
            f"or not allowed to use {model}.{detail}",
            hint="Top up the model provider account or check the key's permissions.",
            status=status)
    url_hint = _base_url_hint(base_url)
    if status == 404 and url_hint and not _NOT_FOUND.search(said):
        # A 404 that names no model, from a base URL of the wrong shape: a missing path.
        return ModelNotFoundError(f"{base_url} has no OpenAI-compatible API (404).{detail}",
                                  hint=url_hint, status=status)
    if status == 404 or (status in (400, 422) and _NOT_FOUND.search(said)):
        return ModelNotFoundError(
            f"The model {model} is not available at {base_url} ({status}).{detail}",
            hint="Set QWQBOT_MODEL to a model this server offers, or AIML_API_BASE_URL to a "
            "server that offers it.", status=status)
    if status == 429:
        wait = f" Try again in {retry_after:.0f} s." if retry_after else ""
        return ModelRateLimitedError(
            f"The model server is rate limiting requests (429).{detail}",
            hint=f"Wait a little and try again.{wait}", status=status, retry_after=retry_after)
    if status in (408, 504):
        return ModelTimeoutError(
            f"The model server timed out while generating the answer ({status}).",
            hint="Try again; a shorter question needs less thinking.", status=status)
    if status >= 500:
        return ModelOverloadedError(
            f"The model provider is overloaded or down ({status}).{detail}",
            hint="Try again in a few minutes.", status=status)
    return ModelBadRequestError(
        f"The model server refused the request ({status}).{detail}",
        hint="This is likely a configuration problem: tell the bot's operator.", status=status)
