from pathlib import Path

import pytest

from qwqbot.config import DEFAULT_SYSTEM_PROMPT, Secret, describe, load_settings
from qwqbot.errors import ConfigError


def test_defaults_follow_qwq_guidance():
    s = load_settings({}, env_file=None)
    assert (s.temperature, s.top_p, s.top_k, s.min_p) == (0.6, 0.95, 40, 0.0)
    assert s.context_tokens == 131072
    assert s.max_tokens > 512  # old server default that cuts reasoning short
    assert s.aiml_api_base_url == "https://api.aimlapi.com/v1"
    assert s.model == "Qwen/QwQ-32B"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.db_path == "qwqbot.db" and s.port == 3000
    assert s.system_prompt == DEFAULT_SYSTEM_PROMPT


def test_interface_names_are_read():
    s = load_settings({
        "SLACK_BOT_TOKEN": "xoxb-1-abc", "SLACK_APP_TOKEN": "xapp-1-def",
        "SLACK_SIGNING_SECRET": "shh", "SLACK_API_URL": "http://127.0.0.1:9/api",
        "AIML_API_KEY": "k", "AIML_API_BASE_URL": "http://localhost:8000/v1",
        "QWQBOT_MODEL": "qwq-32b", "QWQBOT_DB": "/tmp/x.db", "PORT": "8080",
        "QWQBOT_TEMPERATURE": "0.7", "QWQBOT_MAX_TOKENS": "1000", "QWQBOT_ADMINS": "U1, U2",
    }, env_file=None)
    assert s.slack_bot_token == Secret("xoxb-1-abc")
    assert s.socket_mode
    assert s.slack_api_url == "http://127.0.0.1:9/api/"  # slash added for slack_sdk
    assert (s.model, s.db_path, s.port, s.temperature, s.max_tokens) == (
        "qwq-32b", "/tmp/x.db", 8080, 0.7, 1000)
    assert s.admins == ("U1", "U2")


def test_every_problem_reported_one_line_each_naming_the_variable():
    with pytest.raises(ConfigError) as info:
        load_settings({
            "QWQBOT_TEMPERATURE": "7", "QWQBOT_TOP_K": "many", "SLACK_BOT_TOKEN": "xoxp-user-token",
            "AIML_API_BASE_URL": "ftp://x", "PORT": "0", "QWQBOT_REQUIRE_MENTION": "maybe",
        }, env_file=None)
    problems = info.value.problems
    assert len(problems) == 6
    text = "\n".join(problems)
    assert "QWQBOT_TEMPERATURE: should be at least 0 and at most 2 (got '7')" in text
    assert "QWQBOT_TOP_K: should be a whole number" in text
    assert "SLACK_BOT_TOKEN: should start with 'xoxb-'" in text
    assert "AIML_API_BASE_URL: should be an http(s) URL" in text
    assert "PORT: should be at least 1" in text
    assert "QWQBOT_REQUIRE_MENTION: should be true or false" in text
    # the bad token itself is never echoed back
    assert "xoxp-user-token" not in text


def test_max_tokens_must_leave_room_in_the_context():
    with pytest.raises(ConfigError, match="QWQBOT_MAX_TOKENS: should be below QWQBOT_CONTEXT_TOKENS"):
        load_settings({"QWQBOT_MAX_TOKENS": "9000", "QWQBOT_CONTEXT_TOKENS": "8192"}, env_file=None)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path):
    env = tmp_path / ".env"
    env.write_text("AIML_API_KEY=from-file\nQWQBOT_MODEL=file-model\n# comment\n")
    s = load_settings({"QWQBOT_MODEL": "env-model"}, env_file=env)
    assert s.aiml_api_key == Secret("from-file")
    assert s.model == "env-model"


def test_empty_values_mean_default():
    assert load_settings({"QWQBOT_TEMPERATURE": "", "PORT": " "}, env_file=None).port == 3000


def test_require_names_missing_variables_and_where_to_get_them():
    s = load_settings({}, env_file=None)
    with pytest.raises(ConfigError) as info:
        s.require("slack_bot_token", "aiml_api_key")
    assert info.value.problems[0].startswith("SLACK_BOT_TOKEN is not set: the Bot User OAuth Token")
    assert info.value.problems[1].startswith("AIML_API_KEY is not set")


def test_secrets_never_show_in_repr_or_describe():
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-secret-1", "AIML_API_KEY": "sk-secret-2"},
                      env_file=None)
    shown = repr(s) + str(describe(s))
    assert "secret-1" not in shown and "secret-2" not in shown
    assert ("AIML_API_KEY", "set") in describe(s)
    assert ("SLACK_APP_TOKEN", "not set") in describe(s)


def test_settings_are_immutable():
    s = load_settings({}, env_file=None)
    with pytest.raises(AttributeError):
        s.model = "other"  # type: ignore[misc]


def test_an_update_budget_above_slacks_limit_is_refused_with_the_reason():
    assert load_settings({}, env_file=None).update_budget_per_minute == 45
    with pytest.raises(ConfigError) as info:
        load_settings({"QWQBOT_UPDATE_BUDGET": "300"}, env_file=None)
    assert "QWQBOT_UPDATE_BUDGET: should be at most 50: Slack allows about 50 chat.update" in (
        "\n".join(info.value.problems))
    assert load_settings({"QWQBOT_UPDATE_BUDGET": "50"}, env_file=None).update_budget_per_minute == 50


def test_streaming_and_slack_patience_can_be_set():
    s = load_settings({"QWQBOT_STREAMING": "false", "QWQBOT_SLACK_PATIENCE": "60"}, env_file=None)
    assert (s.streaming, s.slack_patience) == (False, 60.0)


ROOT = Path(__file__).resolve().parent.parent


def test_every_secret_in_env_example_is_a_recognised_placeholder():
    from dotenv import dotenv_values

    from qwqbot.config import ENV_EXAMPLE_PLACEHOLDERS

    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v}
    secrets = {k: v for k, v in values.items() if k in (
        "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "AIML_API_KEY")}
    assert set(secrets.values()) == ENV_EXAMPLE_PLACEHOLDERS
    s = load_settings({}, env_file=ROOT / ".env.example")  # they parse: the shapes are right
    assert s.missing("slack_bot_token", "slack_app_token", "aiml_api_key") == [
        f"{env} is still the placeholder from .env.example: replace it with {hint}"
        for env, hint in (
            ("SLACK_BOT_TOKEN", "the Bot User OAuth Token (xoxb-...) from your app's OAuth & "
                                "Permissions page"),
            ("SLACK_APP_TOKEN", "an app-level token (xapp-...) with connections:write, from your "
                                "app's Basic Information page, for Socket Mode, the default "
                                "(HTTP mode takes SLACK_SIGNING_SECRET instead)"),
            ("AIML_API_KEY", "the API key of your model server (any non-empty value if it "
                             "needs none)"))]


@pytest.mark.parametrize("value", ["xoxb-your-token", "xoxb-...", "<your key>", "changeme",
                                   "YOUR_API_KEY"])
def test_placeholders_from_other_guides_are_recognised_too(value):
    from qwqbot.config import is_placeholder

    assert is_placeholder(value)
    s = load_settings({"AIML_API_KEY": value.replace(" ", "-")}, env_file=None)
    with pytest.raises(ConfigError, match="AIML_API_KEY looks like a placeholder: replace it"):
        s.require("aiml_api_key")


@pytest.mark.parametrize("value", ["xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
                                   "3f1c5e0a9b7d4c2e8f6a1b3c5d7e9f0a", "sk-or-v1-abc123", "none"])
def test_real_looking_keys_are_not_placeholders(value):
    from qwqbot.config import is_placeholder

    assert not is_placeholder(value)


@pytest.mark.parametrize(("env", "requested", "mode"), [
    ({"SLACK_APP_TOKEN": "xapp-1"}, None, "socket"),
    ({"SLACK_SIGNING_SECRET": "s"}, None, "http"),
    ({"SLACK_APP_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "s"}, None, "socket"),
    ({}, None, "socket"),  # neither: Socket Mode, the documented default, is what is asked for
    ({"SLACK_APP_TOKEN": "xapp-1"}, "http", "http"),
])
def test_run_mode(env, requested, mode):
    s = load_settings(env, env_file=None)
    assert s.run_mode(requested) == mode
    assert s.needed_to_run(mode)[1] == ("slack_app_token" if mode == "socket"
                                        else "slack_signing_secret")


def test_swapped_tokens_are_one_problem_that_says_so():
    with pytest.raises(ConfigError) as info:
        load_settings({"SLACK_BOT_TOKEN": "xapp-1-A1-secret", "SLACK_APP_TOKEN": "xoxb-2-secret",
                       "PORT": "0"}, env_file=None)
    assert info.value.problems[0] == (
        "SLACK_BOT_TOKEN and SLACK_APP_TOKEN look swapped: the bot token (xoxb-...) belongs in "
        "SLACK_BOT_TOKEN, the app-level token (xapp-...) in SLACK_APP_TOKEN")
    assert len(info.value.problems) == 2  # and the other problem still
    assert "secret" not in "\n".join(info.value.problems)


@pytest.mark.parametrize(("env", "said"), [
    ({"SLACK_BOT_TOKEN": "xapp-1-A1"}, "SLACK_BOT_TOKEN: should start with 'xoxb-' (got an "
     "app-level token, xapp-...: it belongs in SLACK_APP_TOKEN)"),
    ({"SLACK_BOT_TOKEN": "xoxp-1-2"}, "SLACK_BOT_TOKEN: should start with 'xoxb-' (got a user "
     "token, xoxp-...: the bot needs the Bot User OAuth Token instead)"),
    ({"SLACK_APP_TOKEN": "xoxb-1-2"}, "SLACK_APP_TOKEN: should start with 'xapp-' (got a bot "
     "token, xoxb-...: it belongs in SLACK_BOT_TOKEN)"),
    ({"SLACK_APP_TOKEN": "A1B2C3"}, "SLACK_APP_TOKEN: should start with 'xapp-' (got a value "
     "not shown here, as it may be secret)"),
])
def test_a_misplaced_token_is_named_by_its_kind_never_shown(env, said):
    with pytest.raises(ConfigError) as info:
        load_settings(env, env_file=None)
    assert info.value.problems == [said]
