"""`qwqbot check`: is the configuration complete, does Slack take the token, does the model
endpoint answer? One line each, and what to fix when not."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from qwqbot.config import Settings
from qwqbot.errors import ModelError, ModelNotFoundError, QwqbotError
from qwqbot.model.client import ModelClient
from qwqbot.store import open_store


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def check_config(settings: Settings) -> CheckResult:
    missing = []
    if settings.slack_bot_token is None:
        missing.append("SLACK_BOT_TOKEN")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        missing.append("SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")
    if settings.aiml_api_key is None:
        missing.append("AIML_API_KEY")
    if missing:
        return CheckResult("configuration", False,
                           "missing " + "; ".join(missing) + " (see .env.example)")
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    return CheckResult("configuration", True, f"complete, the bot will run in {mode}")


async def check_slack(settings: Settings) -> CheckResult:
    if settings.slack_bot_token is None:
        return CheckResult("Slack", False, "not configured: set SLACK_BOT_TOKEN (xoxb-...)")
    client = AsyncWebClient(token=settings.slack_bot_token.get(), base_url=settings.slack_api_url,
                            timeout=15)
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        fix = {
            "invalid_auth": "the token is wrong: copy the Bot User OAuth Token again",
            "token_revoked": "the token was revoked: reinstall the app to get a new one",
            "account_inactive": "the app or workspace was deactivated",
        }.get(str(error), "check SLACK_BOT_TOKEN")
        return CheckResult("Slack", False, f"auth.test answered {error}: {fix}")
    except (SlackClientError, OSError) as exc:
        return CheckResult("Slack", False,
                           f"could not reach {settings.slack_api_url} ({type(exc).__name__}): "
                           "check SLACK_API_URL and the network")
    return CheckResult("Slack", True,
                       f"token accepted: bot @{auth.get('user')} in workspace {auth.get('team')}")


async def check_model(settings: Settings, client: ModelClient | None = None) -> CheckResult:
    if settings.aiml_api_key is None:
        return CheckResult("model", False, "not configured: set AIML_API_KEY")
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
    try:
        store = open_store(settings.db_path)
    except QwqbotError as exc:
        return CheckResult("database", False, exc.one_line())
    store.close()
    return CheckResult("database", True, f"{settings.db_path} opens and is up to date")


async def run_checks(settings: Settings) -> list[CheckResult]:
    return [check_config(settings), await check_slack(settings), await check_model(settings),
            check_store(settings)]
