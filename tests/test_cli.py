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
    assert lines[0].startswith("FAIL configuration: missing SLACK_BOT_TOKEN")
    assert lines[1] == "FAIL Slack: not configured: set SLACK_BOT_TOKEN (xoxb-...)"
    assert lines[2] == f"ok  model: {model_server.base_url} answers and offers Qwen/QwQ-32B"
    assert lines[3].startswith("ok  database:")


def test_check_model_wrong_key(model_server, env, tmp_path):
    done = qwqbot("check", env={**env, "AIML_API_KEY": "bad"}, cwd=tmp_path)
    assert "FAIL model: The model server rejected the API key (401)" in done.stdout


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


def test_check_bad_slack_token(model_server, slack, env, tmp_path):
    done = qwqbot("check", env={**env, "SLACK_BOT_TOKEN": "xoxb-wrong",
                                "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url},
                  cwd=tmp_path)
    assert "FAIL Slack: auth.test answered invalid_auth: the token is wrong" in done.stdout


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
