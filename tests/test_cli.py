"""`qwqbot ask` and `qwqbot check` as a user runs them: a real subprocess against the
loopback fake model server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwqbot.model.events import Completion, ReasoningDelta
from qwqbot.terminal import AskView
from tests.fakes.model_server import completion, error, stream, think_stream


def qwqbot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 30):
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "qwqbot", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(model_server, tmp_path):
    return {"AIML_API_KEY": "test-key", "AIML_API_BASE_URL": model_server.base_url,
            "QWQBOT_DB": str(tmp_path / "q.db"), "QWQBOT_MAX_RETRIES": "0"}


def test_ask_inline_tags_prints_only_the_answer(model_server, env, tmp_path):
    model_server.enqueue(think_stream("Secret musing.", "The answer is **42**."))
    done = qwqbot("ask", "What is the answer?", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "The answer is **42**.\n"
    assert "Secret musing" not in done.stdout + done.stderr
    assert model_server.requests[0].json["messages"][-1] == {
        "role": "user", "content": "What is the answer?"}


def test_ask_reasoning_flag_shows_reasoning_set_apart(model_server, env, tmp_path):
    model_server.enqueue(think_stream("Step one.", "Done.", opening_tag=False))
    done = qwqbot("ask", "--reasoning", "Go", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("┌─ reasoning") < out.index("Step one.") < out.index("└─ thought for")
    assert out.index("└─ thought for") < out.index("Done.")
    assert "<think>" not in out and "</think>" not in out


def test_ask_reasoning_content_field(model_server, env, tmp_path):
    model_server.enqueue(stream([{"reasoning_content": "Field thoughts."}, "Field answer."]))
    plain = qwqbot("ask", "q", env=env, cwd=tmp_path)
    assert plain.stdout == "Field answer.\n"
    model_server.enqueue(stream([{"reasoning_content": "Field thoughts."}, "Field answer."]))
    shown = qwqbot("ask", "-r", "q", env=env, cwd=tmp_path)
    assert "Field thoughts." in shown.stdout and shown.stdout.rstrip().endswith("Field answer.")


def test_ask_model_without_tags_prints_its_answer(model_server, env, tmp_path):
    model_server.enqueue(completion("Plain answer, no thinking."))
    done = qwqbot("ask", "q", env=env, cwd=tmp_path)
    assert done.stdout == "Plain answer, no thinking.\n"


@pytest.mark.parametrize(("script", "expected"), [
    (error(401), "rejected the API key (401)"),
    (error(403, {"message": "Insufficient credits", "statusCode": 403}), "out of credits"),
    (error(429, headers={"Retry-After": "5"}), "rate limiting requests (429)"),
    (error(503), "overloaded or down (503)"),
    (error(504), "timed out while generating the answer (504)"),
    (stream(["<think>hmm"], finish_reason="length"), "cut off by the token limit"),
])
def test_ask_errors_are_one_clear_line(model_server, env, tmp_path, script, expected):
    model_server.enqueue(script)
    done = qwqbot("ask", "q", env=env, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qwqbot: ") and expected in lines[0]
    assert "Traceback" not in done.stderr


def test_ask_model_not_found(model_server, env, tmp_path):
    done = qwqbot("ask", "q", env={**env, "QWQBOT_MODEL": "nope/model"}, cwd=tmp_path)
    assert done.returncode == 1
    assert "nope/model is not available at " + model_server.base_url in done.stderr


def test_ask_without_key_names_the_variable(tmp_path):
    done = qwqbot("ask", "q", env={}, cwd=tmp_path)
    assert done.returncode == 2
    assert "AIML_API_KEY is not set" in done.stderr


def test_bad_config_exits_2_listing_each_problem(tmp_path):
    done = qwqbot("ask", "q", env={"QWQBOT_TEMPERATURE": "7", "SLACK_BOT_TOKEN": "nope"},
                  cwd=tmp_path)
    assert done.returncode == 2
    assert "QWQBOT_TEMPERATURE: should be at least 0 and at most 2" in done.stderr
    assert "SLACK_BOT_TOKEN: should start with 'xoxb-'" in done.stderr


def test_dotenv_in_working_directory_is_read(model_server, env, tmp_path):
    model_server.enqueue(think_stream("r", "from dotenv"))
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in env.items()))
    done = qwqbot("ask", "q", env={}, cwd=tmp_path)
    assert done.stdout == "from dotenv\n", done.stderr


def test_check_reports_each_part(model_server, env, tmp_path):
    done = qwqbot("check", env=env, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 1  # Slack is not configured
    assert lines[0] == ("FAIL configuration: `qwqbot run` would stop at start in Socket Mode: "
                        "2 settings to fill in (.env.example says where each comes from)")
    assert lines[1].startswith("       SLACK_BOT_TOKEN is not set: the Bot User OAuth Token")
    assert lines[2].startswith("       SLACK_APP_TOKEN is not set: an app-level token (xapp-...)")
    assert lines[3] == "FAIL Slack: not checked: SLACK_BOT_TOKEN is not set"
    assert lines[4] == "FAIL Socket Mode: not checked: SLACK_APP_TOKEN is not set"
    assert lines[5] == f"ok  model: {model_server.base_url} answers and offers Qwen/QwQ-32B"
    assert lines[6].startswith("ok  database:")


def test_check_model_wrong_key(model_server, env, tmp_path):
    done = qwqbot("check", env={**env, "AIML_API_KEY": "bad"}, cwd=tmp_path)
    # The server's words end their sentence before the hint starts its own.
    assert ("FAIL model: The model server rejected the API key (401). The server said: "
            "Invalid API key. Check AIML_API_KEY: it is missing, mistyped or revoked.") in done.stdout


def test_python_dash_m_and_console_script_are_the_same_program(tmp_path):
    scripts = Path(sys.executable).parent
    done = subprocess.run([str(scripts / "qwqbot"), "--version"], capture_output=True, text=True)
    assert done.stdout.startswith("qwqbot ")
    assert qwqbot("--version", env={}, cwd=tmp_path).stdout == done.stdout


def test_live_indicator_shows_elapsed_and_reasoning_size():
    out, err = io.StringIO(), io.StringIO()
    view = AskView(out, err, show_reasoning=False, live=True, color=False)
    c = Completion()
    c.add(ReasoningDelta("x" * 1234))
    view.event(ReasoningDelta("x" * 1234), c)
    assert "Thinking… 0 s · 1,234 characters of reasoning" in err.getvalue()
    assert out.getvalue() == ""  # reasoning stays off stdout unless asked for


def test_check_all_good_against_fake_slack(model_server, slack, env, tmp_path):
    done = qwqbot("check", env={**env, "SLACK_BOT_TOKEN": "xoxb-test-token",
                                "SLACK_APP_TOKEN": "xapp-test-token",
                                "SLACK_API_URL": slack.api_url}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "ok  configuration: complete, the bot will run in Socket Mode" in done.stdout
    assert "ok  Slack: token accepted: bot @qwqbot in workspace" in done.stdout
    assert "ok  Socket Mode: SLACK_APP_TOKEN accepted: a connection to 127.0.0.1 opened" in (
        done.stdout)
    # apps.connections.open was asked with the app-level token, and its WebSocket was closed
    [opened] = slack.calls_to("apps.connections.open")
    assert opened.token == "xapp-test-token"
    slack.wait_for_sync(lambda: slack.socket_connections == 0)


def test_check_bad_slack_token(model_server, slack, env, tmp_path):
    done = qwqbot("check", env={**env, "SLACK_BOT_TOKEN": "xoxb-wrong",
                                "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url},
                  cwd=tmp_path)
    assert "FAIL Slack: auth.test answered invalid_auth: the token is wrong" in done.stdout


@pytest.mark.parametrize(("base", "hint"), [
    ("{root}", "AIML_API_BASE_URL probably needs to end in /v1: try {root}/v1."),
    ("{root}/v1/chat/completions",
     "AIML_API_BASE_URL should end in /v1, without /chat/completions: try {root}/v1."),
], ids=["without /v1", "with /chat/completions"])
def test_a_base_url_that_misses_the_api_says_to_end_it_in_v1(model_server, env, tmp_path,
                                                              base, hint):
    root = model_server.base_url.removesuffix("/v1")
    url = base.format(root=root)
    for command in (("ask", "q"), ("check",)):
        done = qwqbot(*command, env={**env, "AIML_API_BASE_URL": url}, cwd=tmp_path)
        assert done.returncode == 1
        out = done.stderr if command[0] == "ask" else done.stdout
        assert f"{url} has no OpenAI-compatible API (404)." in out
        assert hint.format(root=root) in out
        assert "is not available" not in out  # not mistaken for a missing model


def test_run_and_check_ask_for_the_same_settings_in_the_same_words(tmp_path):
    run = qwqbot("run", env={}, cwd=tmp_path)
    check = qwqbot("check", env={}, cwd=tmp_path)
    assert run.returncode == 2 and check.returncode == 1
    asked_by_run = [line.strip() for line in run.stderr.splitlines()[1:]]
    asked_by_check = [line.strip() for line in check.stdout.splitlines()[1:4]]
    assert asked_by_run == asked_by_check
    assert [line.split(" is not set")[0] for line in asked_by_run] == [
        "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "AIML_API_KEY"]
    # Socket Mode is the default, and the line about its token names the other way too
    assert "for Socket Mode, the default (HTTP mode takes SLACK_SIGNING_SECRET instead)" in (
        asked_by_run[1])


def test_run_in_http_mode_asks_for_the_signing_secret(tmp_path):
    done = qwqbot("run", "--mode", "http", env={}, cwd=tmp_path)
    assert done.returncode == 2
    assert "SLACK_SIGNING_SECRET is not set: the Signing Secret from your app's Basic " in (
        done.stderr)
    assert "SLACK_APP_TOKEN" not in done.stderr


def test_swapped_slack_tokens_are_called_swapped(tmp_path):
    swapped = {"SLACK_BOT_TOKEN": "xapp-1-A1-123", "SLACK_APP_TOKEN": "xoxb-1-2-abc"}
    for command in ("run", "check"):
        done = qwqbot(command, env=swapped, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            "qwqbot: Configuration problems:",
            "  SLACK_BOT_TOKEN and SLACK_APP_TOKEN look swapped: the bot token (xoxb-...) "
            "belongs in SLACK_BOT_TOKEN, the app-level token (xapp-...) in SLACK_APP_TOKEN"]
        assert "A1-123" not in done.stderr and "2-abc" not in done.stderr


def test_manifest_needs_the_checkout_or_a_file(tmp_path):
    done = qwqbot("manifest", "--http", "https://bot.example.com", env={}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("qwqbot: cannot read manifest.yml (No such file or directory)")
    assert "--from FILE" in done.stderr


def test_ask_with_files_puts_them_in_the_question_fenced_and_says_what_it_could_not_read(
        model_server, env, tmp_path):
    from tests.files.pdfs import make_pdf

    (tmp_path / "app.log").write_text("ERROR boom\nINFO retry\n")
    (tmp_path / "invoice.pdf").write_bytes(make_pdf([["Total: 12.50 EUR"]]))
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    model_server.enqueue(think_stream("r", "It failed."))
    done = qwqbot("ask", "why?", "--file", "app.log", "-f", "invoice.pdf", "--file", "photo.png",
                  env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It failed.\n"
    system, user = model_server.requests[0].json["messages"]
    nonce = user["content"].split("<<file ", 1)[1].split(" ", 1)[0]
    assert f"<<file {nonce} #N" in system["content"]
    assert user["content"] == (
        f'why?\n\n<<file {nonce} #1 name="app.log" type="log">>\nERROR boom\nINFO retry\n'
        f'<<end file {nonce}>>\n\n<<file {nonce} #2 name="invoice.pdf" type="PDF">>\n[page 1]\n'
        f'Total: 12.50 EUR\n<<end file {nonce}>>\n\n<<file {nonce} #3 name="photo.png" '
        f'type="PNG image" unread="you cannot see images, audio or video: only text reaches you">>')
    assert "qwqbot: Files: read app.log, invoice.pdf" in done.stderr
    assert "qwqbot: The model reads text only, so it did not see photo.png." in done.stderr


def test_ask_with_a_missing_file_says_so_and_asks_nothing(model_server, env, tmp_path):
    done = qwqbot("ask", "why?", "--file", "nope.log", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "qwqbot: cannot read nope.log: No such file or directory"
    assert model_server.requests == []
