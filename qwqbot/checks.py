"""`qwqbot check`: would `qwqbot run` start, and would it work? One line for each part, and
what to fix when not.

Every part is tried the way `run` uses it: the configuration by the very rules `run` applies
(``Settings.missing``), Slack with the bot token (``auth.test``) and, for Socket Mode, with the
app-level token (``apps.connections.open`` and a WebSocket that is opened and closed again), the
model endpoint, the database. A check changes nothing: a database that does not exist yet is not
created, and one that does is opened read-only, never migrated.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Mode, Secret, Settings, is_placeholder
from qwqbot.errors import ModelError, ModelNotFoundError, StoreError
from qwqbot.model.client import ModelClient
from qwqbot.store.probe import pending_migrations

#: seconds to wait for Socket Mode's "hello" after the WebSocket opens
HELLO_TIMEOUT = 10.0
MODE_NAMES: dict[Mode, str] = {"socket": "Socket Mode", "http": "HTTP mode"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    #: further lines, printed indented under this one (one per configuration problem)
    more: tuple[str, ...] = ()

    def line(self) -> str:
        first = f"{'ok ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return "\n".join([first, *(f"       {extra}" for extra in self.more)])


def _unusable(secret: Secret | None, env: str) -> str | None:
    """Why a secret cannot be tried on its server, or None when it can."""
    if secret is None:
        return f"not checked: {env} is not set"
    if is_placeholder(secret.get()):
        return f"not checked: {env} is still a placeholder"
    return None


def check_config(settings: Settings, mode: Mode) -> CheckResult:
    problems = settings.missing(*settings.needed_to_run(mode))
    if problems:
        return CheckResult(
            "configuration", False,
            f"`qwqbot run` would stop at start in {MODE_NAMES[mode]}: "
            f"{len(problems)} setting{'' if len(problems) == 1 else 's'} to fill in "
            "(.env.example says where each comes from)", more=tuple(problems))
    return CheckResult("configuration", True, f"complete, the bot will run in {MODE_NAMES[mode]}")


_AUTH_FIXES = {
    "invalid_auth": "the token is wrong: copy the Bot User OAuth Token again",
    "token_revoked": "the token was revoked: reinstall the app to get a new one",
    "account_inactive": "the app or workspace was deactivated",
    "not_allowed_token_type": "this is not a bot token: use the Bot User OAuth Token (xoxb-...)",
}


async def check_slack(settings: Settings) -> CheckResult:
    why = _unusable(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    if why:
        return CheckResult("Slack", False, why)
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get(), base_url=settings.slack_api_url,
                            timeout=15)
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown error"))
        return CheckResult("Slack", False, f"auth.test answered {error}: "
                           f"{_AUTH_FIXES.get(error, 'check SLACK_BOT_TOKEN')}")
    except (SlackClientError, OSError) as exc:
        return CheckResult("Slack", False,
                           f"could not reach {settings.slack_api_url} ({type(exc).__name__}): "
                           "check SLACK_API_URL and the network")
    return CheckResult("Slack", True,
                       f"token accepted: bot @{auth.get('user')} in workspace {auth.get('team')}")


# apps.connections.open's errors (https://docs.slack.dev/reference/methods/apps.connections.open)
_APP_TOKEN_FIXES = {
    "invalid_auth": "the token is wrong: copy the app-level token (xapp-...) again from your "
    "app's Basic Information page",
    "not_allowed_token_type": "this is not an app-level token: create one (xapp-...) with "
    "connections:write under Basic Information",
    "missing_scope": "the token lacks connections:write: create one with that scope under "
    "Basic Information",
    "token_revoked": "the token was revoked: create a new one under Basic Information",
}


async def check_socket_mode(settings: Settings) -> CheckResult:
    """What `run` does first in Socket Mode: a connection URL for the app-level token, then
    the WebSocket, which Slack greets with ``hello``
    (https://docs.slack.dev/apis/events-api/using-socket-mode). It is closed at once."""
    why = _unusable(settings.slack_app_token, "SLACK_APP_TOKEN")
    if why:
        return CheckResult("Socket Mode", False, why)
    assert settings.slack_app_token is not None
    client = AsyncWebClient(base_url=settings.slack_api_url, timeout=15)
    try:
        opened = await client.apps_connections_open(app_token=settings.slack_app_token.get())
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown error"))
        fix = _APP_TOKEN_FIXES.get(error, "check SLACK_APP_TOKEN, and that Socket Mode is on "
                                   "in your app's settings")
        return CheckResult("Socket Mode", False, f"apps.connections.open answered {error}: {fix}")
    except (SlackClientError, OSError) as exc:
        return CheckResult("Socket Mode", False,
                           f"could not reach {settings.slack_api_url} ({type(exc).__name__}): "
                           "check SLACK_API_URL and the network")
    url = str(opened.get("url") or "")
    # The URL carries a one-time ticket: only its host is ever shown.
    host = urlparse(url).hostname or "Slack"
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            first = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return CheckResult("Socket Mode", False,
                           f"the token works, but the WebSocket to {host} did not open "
                           f"({type(exc).__name__}): check that this network lets wss:// "
                           "connections out")
    hello = _json(first.data) if first.type == aiohttp.WSMsgType.TEXT else {}
    if hello.get("type") != "hello":
        return CheckResult("Socket Mode", False,
                           f"the WebSocket to {host} opened but Slack did not greet it: try again")
    return CheckResult("Socket Mode", True,
                       f"SLACK_APP_TOKEN accepted: a connection to {host} opened (and was closed)")


def _json(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def check_model(settings: Settings, client: ModelClient | None = None) -> CheckResult:
    why = _unusable(settings.aiml_api_key, "AIML_API_KEY")
    if why:
        return CheckResult("model", False, why)
    model = client or ModelClient.from_settings(settings)
    where = settings.aiml_api_base_url
    try:
        try:
            ids = await model.list_models()
        except ModelNotFoundError:
            ids = None  # servers without GET /models: ask for a single token instead
        if ids is not None and settings.model in ids:
            return CheckResult("model", True, f"{where} answers and offers {settings.model}")
        if ids:
            return CheckResult(
                "model", False,
                f"{where} answers but does not list {settings.model}: set QWQBOT_MODEL to one "
                f"it offers (e.g. {', '.join(sorted(ids)[:3])})")
        await model.complete([{"role": "user", "content": "Say OK."}], max_tokens=1,
                             stream=False)
        return CheckResult("model", True, f"{where} answered a one-token request")
    except ModelError as exc:
        if exc.kind == "cut_off":  # max_tokens=1 always ends with "length": that is success
            return CheckResult("model", True, f"{where} answered a one-token request")
        return CheckResult("model", False, exc.one_line())
    finally:
        if client is None:
            await model.aclose()


def check_store(settings: Settings) -> CheckResult:
    """Read-only: what `run` will find at QWQBOT_DB, without creating or upgrading it."""
    if settings.db_path in ("", ":memory:"):
        return CheckResult("database", True, "in memory: nothing is kept after the bot stops")
    path = Path(settings.db_path).expanduser().resolve()
    if not path.exists():
        folder = path.parent
        if not folder.is_dir():
            return CheckResult("database", False, f"{path} cannot be created: folder {folder} "
                               "does not exist (create it, or set QWQBOT_DB)")
        if not os.access(folder, os.W_OK | os.X_OK):
            return CheckResult("database", False, f"{path} cannot be created: folder {folder} "
                               "is not writable by this user (or set QWQBOT_DB)")
        return CheckResult("database", True,
                           f"{path} does not exist yet: `qwqbot run` will create it")
    try:
        pending = pending_migrations(path)
    except StoreError as exc:
        return CheckResult("database", False, exc.user_message)
    if pending:
        return CheckResult("database", True, f"{path} opens; `qwqbot run` will upgrade it "
                           f"({pending} migration{'' if pending == 1 else 's'})")
    return CheckResult("database", True, f"{path} opens and is up to date")


async def run_checks(settings: Settings, mode: Mode | None = None) -> list[CheckResult]:
    """Every check, for the mode `qwqbot run` would use (or ``mode``, as ``--mode`` gives it)."""
    chosen = settings.run_mode(mode)
    results = [check_config(settings, chosen), await check_slack(settings)]
    if chosen == "socket":
        results.append(await check_socket_mode(settings))
    return [*results, await check_model(settings), check_store(settings)]
