"""Errors qwqbot raises on purpose, drawn once here.

    QwqbotError                 .user_message is safe to show a Slack user or a terminal
    ├── ConfigError             one line per bad or missing setting
    ├── StoreError              the database cannot be opened or written
    └── ModelError              the model server did not give a usable answer
        ├── ModelAuthError          401: key missing or wrong
        ├── ModelCreditsError       402/403: out of credits / not allowed
        ├── ModelNotFoundError      404 or "model does not exist": names model and base URL
        ├── ModelBadRequestError    400: the server refused the request
        │   └── ModelContextLengthError  the prompt is too long for the server's context window
        ├── ModelRateLimitedError   429 (retryable; carries Retry-After)
        ├── ModelOverloadedError    500/502/503 (retryable)
        ├── ModelTimeoutError       504, connect, idle or overall timeout
        ├── ModelConnectionError    server unreachable (retryable)
        ├── ModelProtocolError      the server spoke something that is not the API
        └── AnswerCutOffError       finish_reason "length": carries what arrived so far

Messages never contain secrets: the key is never formatted into any of them, and
server-supplied text is shortened before it is included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from qwqbot.model.events import Completion


class QwqbotError(Exception):
    """Base class. ``str(err)`` and ``err.user_message`` are safe to show a user."""

    #: short machine-readable name, stored in the database and used in logs
    kind: ClassVar[str] = "error"

    def __init__(self, user_message: str, *, hint: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        #: what the reader can do about it
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.user_message} {self.hint}".strip()


class ConfigError(QwqbotError):
    kind = "config"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Configuration problems:\n" + "\n".join(f"  {p}" for p in problems))


class StoreError(QwqbotError):
    kind = "store"


class ModelError(QwqbotError):
    kind = "model"
    #: whether trying again later may succeed (used by retries and by the Retry button text)
    retryable: ClassVar[bool] = False

    def __init__(self, user_message: str, *, hint: str = "", status: int | None = None) -> None:
        super().__init__(user_message, hint=hint)
        self.status = status
        #: what the model had produced before the failure, when known
        self.partial: Completion | None = None


class ModelAuthError(ModelError):
    kind = "auth"


class ModelCreditsError(ModelError):
    kind = "credits"


class ModelNotFoundError(ModelError):
    kind = "model_not_found"


class ModelBadRequestError(ModelError):
    kind = "bad_request"


class ModelContextLengthError(ModelBadRequestError):
    """The server said the prompt (with ``max_tokens``) does not fit its context window.

    What it stated, when it did: ``context_limit``, its whole window; ``prompt_limit``, the most a
    prompt alone may have (DashScope states that instead); ``prompt_tokens``, its own count of the
    prompt it refused. Each is None when the server did not say.
    """

    kind = "context_length"

    def __init__(self, user_message: str, *, hint: str = "", status: int | None = 400,
                 context_limit: int | None = None, prompt_limit: int | None = None,
                 prompt_tokens: int | None = None) -> None:
        super().__init__(user_message, hint=hint, status=status)
        self.context_limit = context_limit
        self.prompt_limit = prompt_limit
        self.prompt_tokens = prompt_tokens


class ModelRateLimitedError(ModelError):
    kind = "rate_limited"
    retryable = True

    def __init__(
        self, user_message: str, *, hint: str = "", status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(user_message, hint=hint, status=status)
        self.retry_after = retry_after


class ModelOverloadedError(ModelError):
    kind = "overloaded"
    retryable = True


class ModelTimeoutError(ModelError):
    kind = "timeout"
    retryable = True


class ModelConnectionError(ModelError):
    kind = "connection"
    retryable = True


class ModelProtocolError(ModelError):
    kind = "protocol"
    retryable = True


class AnswerCutOffError(ModelError):
    """The model hit ``max_tokens``; ``partial`` holds the reasoning and answer so far."""

    kind = "cut_off"
    partial: Completion

    def __init__(self, user_message: str, *, hint: str = "", partial: Completion) -> None:
        super().__init__(user_message, hint=hint)
        self.partial = partial
