"""Settings: the only reader of the environment.

Built once at start from ``os.environ`` and an optional ``.env`` (the environment wins,
as on Heroku-style platforms). Every bad value is reported at once, one line per
problem naming the variable and what it should be, so an operator fixes them in one go.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from dotenv import dotenv_values

from qwqbot.errors import ConfigError

T = TypeVar("T")
#: how ``qwqbot run`` meets Slack: a WebSocket it opens, or requests Slack POSTs to it
Mode = Literal["socket", "http"]

DEFAULT_SYSTEM_PROMPT = (
    "You are qwqbot, a helpful assistant in a Slack workspace, powered by the QwQ-32B "
    "reasoning model. Answer clearly and concisely in Markdown. When several people take "
    "part in a conversation, their messages are prefixed with their names."
)


class Secret:
    """A string that never shows itself in repr/str, so it cannot leak into logs or errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class Settings:
    # --- the outside interface (README.md, "Configuration"): renaming one breaks deployments ---
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_api_url: str = "https://slack.com/api/"
    aiml_api_key: Secret | None = None
    aiml_api_base_url: str = "https://api.aimlapi.com/v1"
    model: str = "Qwen/QwQ-32B"
    db_path: str = "qwqbot.db"
    port: int = 3000
    # --- sampling: QwQ's model-card guidance; sent explicitly because some servers
    # (Ollama's /v1) fall back to temperature 1.0 / top_p 1.0 when omitted ---
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0
    presence_penalty: float | None = None
    # Reasoning often runs to thousands of tokens (Qwen's evals allow 32,768); 512, an old
    # server default, cuts QwQ off mid-thought.
    max_tokens: int = 32768
    context_tokens: int = 131072
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # --- timeouts (seconds): long reasoning is normal, so the ceiling is minutes ---
    connect_timeout: float = 10.0
    idle_timeout: float = 120.0
    total_timeout: float = 900.0
    max_retries: int = 4
    log_level: str = "INFO"
    # --- Slack behaviour ---
    max_concurrent: int = 16
    progress_interval: float = 1.0
    update_budget_per_minute: int = 45
    streaming: bool = True
    require_mention: bool = False
    shutdown_grace: float = 25.0
    slack_patience: float = 1800.0
    retention_days: int = 90
    # --- digests ---
    digest_post_empty: bool = False
    digest_grace_hours: float = 12.0
    admins: tuple[str, ...] = field(default_factory=tuple)
    # --- limits: 0 tokens = no daily quota; empty allow list = every channel ---
    user_daily_tokens: int = 0
    allowed_channels: tuple[str, ...] = field(default_factory=tuple)
    denied_channels: tuple[str, ...] = field(default_factory=tuple)

    def missing(self, *names: str) -> list[str]:
        """One line per setting among ``names`` (attribute names) that is not set, or is
        still the placeholder ``.env.example`` ships with; ``run``, ``ask``, ``digest run``
        and ``check`` all say it in these words."""
        problems = []
        for name in names:
            value = getattr(self, name)
            if value is None:
                problems.append(f"{_ENV_OF[name]} is not set: {_REQUIRED_HINT[name]}")
            elif isinstance(value, Secret) and is_placeholder(value.get()):
                what = ("is still the placeholder from .env.example"
                        if value.get() in ENV_EXAMPLE_PLACEHOLDERS else "looks like a placeholder")
                problems.append(f"{_ENV_OF[name]} {what}: replace it with {_REQUIRED_HINT[name]}")
        return problems

    def require(self, *names: str) -> None:
        """Fail with one line per setting among ``names`` that ``missing`` reports."""
        problems = self.missing(*names)
        if problems:
            raise ConfigError(problems)

    def run_mode(self, requested: Mode | None = None) -> Mode:
        """The mode ``qwqbot run`` uses: ``--mode`` if given; else Socket Mode when
        SLACK_APP_TOKEN is set, HTTP mode when only SLACK_SIGNING_SECRET is. With neither,
        Socket Mode, the documented default, so what is asked for is its app-level token."""
        if requested is not None:
            return requested
        if self.slack_app_token is None and self.slack_signing_secret is not None:
            return "http"
        return "socket"

    @staticmethod
    def needed_to_run(mode: Mode) -> tuple[str, ...]:
        """The settings ``qwqbot run`` needs in ``mode`` (``check`` checks the same)."""
        return ("slack_bot_token", "slack_app_token" if mode == "socket" else "slack_signing_secret",
                "aiml_api_key")

    @property
    def socket_mode(self) -> bool:
        return self.run_mode() == "socket"


_REQUIRED_HINT = {
    "slack_bot_token": "the Bot User OAuth Token (xoxb-...) from your app's OAuth & Permissions page",
    "slack_app_token": "an app-level token (xapp-...) with connections:write, from your app's "
    "Basic Information page, for Socket Mode, the default (HTTP mode takes SLACK_SIGNING_SECRET "
    "instead)",
    "slack_signing_secret": "the Signing Secret from your app's Basic Information page, for "
    "HTTP mode",
    "aiml_api_key": "the API key of your model server (any non-empty value if it needs none)",
}

#: The values .env.example ships with (tests/test_config.py keeps them equal to the file):
#: a copy of it that was never filled in must not pass for a configuration.
ENV_EXAMPLE_PLACEHOLDERS = frozenset({"xoxb-your-bot-token", "xapp-your-app-token",
                                      "your-aimlapi-key"})
# The same kind of stand-in from other guides: "xoxb-your-token", "<your key>", "sk-...".
_PLACEHOLDER_SHAPE = re.compile(r"your[-_ ]|^<.*>$|\.\.\.|^(changeme|placeholder)$",
                                re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    """Whether a secret is a stand-in someone forgot to replace, not a real token or key."""
    return value in ENV_EXAMPLE_PLACEHOLDERS or bool(_PLACEHOLDER_SHAPE.search(value))


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _secret(prefix: str | None) -> Callable[[str], Secret]:
    def parse(raw: str) -> Secret:
        if prefix and not raw.startswith(prefix):
            raise ValueError(f"should start with {prefix!r}")
        if any(c.isspace() for c in raw):
            raise ValueError("should not contain spaces")
        return Secret(raw)

    return parse


def _url(raw: str) -> str:
    parts = urlparse(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("should be an http(s) URL such as https://api.example.com/v1")
    return raw


def _slack_url(raw: str) -> str:
    # slack_sdk joins base_url + method name, so the trailing slash matters.
    return _url(raw).rstrip("/") + "/"


def _number(kind: type[T], low: float | None = None, high: float | None = None,
            *, low_open: bool = False) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        try:
            value = kind(raw)  # type: ignore[call-arg]
        except ValueError:
            # Not chained: the cause only repeats the raw value, which load_settings shows
            # through _shown (never a secret, shortened) or not at all.
            raise ValueError(f"should be {'a whole number' if kind is int else 'a number'}") from None
        number = float(value)  # type: ignore[arg-type]
        too_low = low is not None and (number <= low if low_open else number < low)
        too_high = high is not None and number > high
        if too_low or too_high:
            lo = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
            hi = "" if high is None else f"at most {high:g}"
            raise ValueError("should be " + " and ".join(p for p in (lo, hi) if p))
        return value

    return parse


def _update_budget(raw: str) -> int:
    value = _number(int, 1)(raw)
    if value > 50:
        raise ValueError("should be at most 50: Slack allows about 50 chat.update calls a "
                         "minute per workspace (Tier 3), and more only buys refusals")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("should be true or false")


def _level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError("should be one of " + ", ".join(LOG_LEVELS))
    return raw.upper()


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("should not be empty")
    return raw


def _channel_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(p.strip() for p in raw.replace(" ", ",").split(",") if p.strip())
    if any(not (i[:1] in ("C", "G", "D") and i.isalnum()) for i in ids):
        raise ValueError("should be Slack channel ids like C012ABCDEF, separated by commas")
    return ids


def _user_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(p.strip() for p in raw.replace(" ", ",").split(",") if p.strip())
    bad = [i for i in ids if not (i[:1] in ("U", "W") and i.isalnum())]
    if bad:
        raise ValueError("should be Slack user ids like U012ABCDEF, separated by commas")
    return ids


# attribute -> (environment variable, parser). The first block is the README's outside interface.
_SPEC: dict[str, tuple[str, Callable[[str], Any]]] = {
    "slack_bot_token": ("SLACK_BOT_TOKEN", _secret("xoxb-")),
    "slack_app_token": ("SLACK_APP_TOKEN", _secret("xapp-")),
    "slack_signing_secret": ("SLACK_SIGNING_SECRET", _secret(None)),
    "slack_api_url": ("SLACK_API_URL", _slack_url),
    "aiml_api_key": ("AIML_API_KEY", _secret(None)),
    "aiml_api_base_url": ("AIML_API_BASE_URL", _url),
    "model": ("QWQBOT_MODEL", _nonempty),
    "db_path": ("QWQBOT_DB", _nonempty),
    "port": ("PORT", _number(int, 1, 65535)),
    "temperature": ("QWQBOT_TEMPERATURE", _number(float, 0, 2)),
    "top_p": ("QWQBOT_TOP_P", _number(float, 0, 1, low_open=True)),
    "top_k": ("QWQBOT_TOP_K", _number(int, -1)),
    "min_p": ("QWQBOT_MIN_P", _number(float, 0, 1)),
    "presence_penalty": ("QWQBOT_PRESENCE_PENALTY", _number(float, -2, 2)),
    "max_tokens": ("QWQBOT_MAX_TOKENS", _number(int, 1)),
    "context_tokens": ("QWQBOT_CONTEXT_TOKENS", _number(int, 1024)),
    "system_prompt": ("QWQBOT_SYSTEM_PROMPT", _nonempty),
    "connect_timeout": ("QWQBOT_CONNECT_TIMEOUT", _number(float, 0, low_open=True)),
    "idle_timeout": ("QWQBOT_IDLE_TIMEOUT", _number(float, 0, low_open=True)),
    "total_timeout": ("QWQBOT_TOTAL_TIMEOUT", _number(float, 0, low_open=True)),
    "max_retries": ("QWQBOT_MAX_RETRIES", _number(int, 0, 10)),
    "log_level": ("QWQBOT_LOG_LEVEL", _level),
    "max_concurrent": ("QWQBOT_MAX_CONCURRENT", _number(int, 1, 1000)),
    "progress_interval": ("QWQBOT_PROGRESS_INTERVAL", _number(float, 0.2, 60)),
    # chat.update is Tier 3, 50 a minute per workspace
    # (https://docs.slack.dev/reference/methods/chat.update): a budget above that only
    # buys 429s, so it is refused.
    "update_budget_per_minute": ("QWQBOT_UPDATE_BUDGET", _update_budget),
    "streaming": ("QWQBOT_STREAMING", _bool),
    "require_mention": ("QWQBOT_REQUIRE_MENTION", _bool),
    "shutdown_grace": ("QWQBOT_SHUTDOWN_GRACE", _number(float, 0, 3600)),
    "slack_patience": ("QWQBOT_SLACK_PATIENCE", _number(float, 1, 86400)),
    "retention_days": ("QWQBOT_RETENTION_DAYS", _number(int, 1)),
    "digest_post_empty": ("QWQBOT_DIGEST_POST_EMPTY", _bool),
    "digest_grace_hours": ("QWQBOT_DIGEST_GRACE_HOURS", _number(float, 0, 24 * 7)),
    "admins": ("QWQBOT_ADMINS", _user_ids),
    "user_daily_tokens": ("QWQBOT_USER_DAILY_TOKENS", _number(int, 0)),
    "allowed_channels": ("QWQBOT_ALLOWED_CHANNELS", _channel_ids),
    "denied_channels": ("QWQBOT_DENIED_CHANNELS", _channel_ids),
}
_ENV_OF = {attr: env for attr, (env, _) in _SPEC.items()}


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> Settings:
    """Build Settings from ``environ`` (default ``os.environ``) over ``env_file`` values.

    Raises ConfigError listing every problem found.
    """
    source: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    problems: list[str] = []
    for attr, (env, parse) in _SPEC.items():
        raw = source.get(env)
        if raw is None or raw.strip() == "":
            continue  # unset or empty: keep the default
        try:
            values[attr] = parse(raw.strip() if attr != "system_prompt" else raw)
        except ValueError as exc:
            problems.append(f"{env}: {exc} (got {_shown(attr, raw)})")
    if _swapped(source.get("SLACK_BOT_TOKEN"), source.get("SLACK_APP_TOKEN")):
        problems = [p for p in problems if not p.startswith(("SLACK_BOT_TOKEN:", "SLACK_APP_TOKEN:"))]
        problems.insert(0, "SLACK_BOT_TOKEN and SLACK_APP_TOKEN look swapped: the bot token "
                        "(xoxb-...) belongs in SLACK_BOT_TOKEN, the app-level token (xapp-...) "
                        "in SLACK_APP_TOKEN")

    if not problems:
        max_tokens = values.get("max_tokens", Settings.max_tokens)
        context = values.get("context_tokens", Settings.context_tokens)
        if max_tokens >= context:
            problems.append(
                f"QWQBOT_MAX_TOKENS: should be below QWQBOT_CONTEXT_TOKENS ({context}), "
                "leaving room for the conversation"
            )
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


# Slack's token prefixes (https://docs.slack.dev/authentication/tokens): what a misplaced
# token is can be said without showing any of it.
_TOKEN_KINDS = {"xoxb-": "a bot token", "xapp-": "an app-level token", "xoxp-": "a user token",
                "xoxe.": "a refresh token", "xoxe-": "a refresh token"}


def _token_kind(raw: str) -> str | None:
    return next((f"{kind}, {prefix}..." for prefix, kind in _TOKEN_KINDS.items()
                 if raw.strip().startswith(prefix)), None)


def _swapped(bot: str | None, app: str | None) -> bool:
    """Both Slack tokens present, each with the other's prefix."""
    return bool(bot and app and bot.strip().startswith("xapp-") and app.strip().startswith("xoxb-"))


# Where a token that landed in the wrong variable belongs.
_BELONGS = {("slack_bot_token", "xapp-"): "it belongs in SLACK_APP_TOKEN",
            ("slack_app_token", "xoxb-"): "it belongs in SLACK_BOT_TOKEN",
            ("slack_bot_token", "xoxp-"): "the bot needs the Bot User OAuth Token instead"}


def _shown(attr: str, raw: str) -> str:
    """The bad value as it may be printed: secrets are never echoed back, though the kind of
    Slack token they are (its public prefix) is named, and where it belongs."""
    if attr in ("slack_bot_token", "slack_app_token", "slack_signing_secret", "aiml_api_key"):
        kind = _token_kind(raw)
        if kind is None:
            return "a value not shown here, as it may be secret"
        belongs = _BELONGS.get((attr, raw.strip()[:5]))
        return f"{kind}: {belongs}" if belongs else kind
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for `qwqbot check`; secrets show only whether they are set."""
    rows = []
    for f in fields(settings):
        env = _ENV_OF[f.name]
        value = getattr(settings, f.name)
        if isinstance(value, Secret):
            shown = "set"
        elif value is None:
            shown = "not set"
        elif f.name == "system_prompt":
            shown = "default" if value == DEFAULT_SYSTEM_PROMPT else "custom"
        elif isinstance(value, tuple):
            shown = ", ".join(value) or "none"
        else:
            shown = str(value)
        rows.append((env, shown))
    return rows
