"""`qwqbot run` as a deploy platform runs it: a real process, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.model_server import hang, stream
from tests.slack.harness import BOT, SECRET, free_port, sign


def start(slack, model_server, tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
                "AIML_API_BASE_URL": model_server.base_url, "QWQBOT_DB": str(tmp_path / "r.db"),
                "QWQBOT_PROGRESS_INTERVAL": "0.3", **extra})
    proc = subprocess.Popen([sys.executable, "-m", "qwqbot", "run", "--mode", "http", "--port",
                             str(port)], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, port


def wait_healthy(proc: subprocess.Popen[str], port: int) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"bot exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if r.status_code == 200:
                return dict(r.json())
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("bot did not become healthy")


def mention(slack, port: int, text: str) -> str:
    ts: str = slack.add_message("C1", user="U1", text=text)
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": f"Ev{ts}",
                       "event": {"type": "app_mention", "channel": "C1", "user": "U1",
                                 "text": text, "ts": ts}})
    r = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body,
                   headers={"Content-Type": "application/json", **sign(body)})
    assert r.status_code == 200
    return ts


def test_http_mode_serves_health_answers_and_stops_gracefully(slack, model_server, tmp_path):
    model_server.default = stream(["<think>", "a", "b", "c", "</think>", "Finished in time."],
                                  chunk_delay=0.3)
    proc, port = start(slack, model_server, tmp_path, QWQBOT_SHUTDOWN_GRACE="20")
    try:
        health = wait_healthy(proc, port)
        assert (health["ok"], health["in_flight"], health["db"]) == (True, 0, "ok")
        ts = mention(slack, port, f"<@{BOT}> question")
        slack.wait_for_sync(lambda: len(slack.assistant_statuses) == 1)  # thinking
        proc.send_signal(signal.SIGTERM)  # a deploy, mid-answer
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    replies = [m for m in slack.messages("C1", ts) if m.get("user") == "UBOT"]
    assert len(replies) == 1 and "Finished in time." in json.dumps(replies[0]["blocks"])


def test_sigterm_past_the_grace_period_marks_answers_interrupted(slack, model_server, tmp_path):
    model_server.default = hang(["<think>endless"], seconds=60)
    proc, port = start(slack, model_server, tmp_path, QWQBOT_SHUTDOWN_GRACE="0.5")
    try:
        wait_healthy(proc, port)
        ts = mention(slack, port, f"<@{BOT}> question")
        slack.wait_for_sync(lambda: len(slack.assistant_statuses) == 1)  # thinking
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    [reply] = [m for m in slack.messages("C1", ts) if m.get("user") == "UBOT"]
    text = json.dumps(reply["blocks"])
    assert "interrupted" in text and "qwqbot_retry" in text


def test_bad_slack_token_fails_fast_with_one_line(slack, model_server, tmp_path):
    proc, _ = start(slack, model_server, tmp_path, SLACK_BOT_TOKEN="xoxb-nope")
    assert proc.wait(timeout=20) == 1
    assert proc.stderr is not None
    err = proc.stderr.read().strip().splitlines()
    assert err[-1].startswith("qwqbot: Slack rejected SLACK_BOT_TOKEN (invalid_auth).")


@pytest.mark.parametrize(("mode", "missing"), [("http", "SLACK_SIGNING_SECRET"),
                                               ("socket", "SLACK_APP_TOKEN")])
def test_mode_needs_its_secret(tmp_path, mode, missing):
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "AIML_API_KEY": "k", "PATH": os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-m", "qwqbot", "run", "--mode", mode], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert f"{missing} is not set" in done.stderr


def test_kill_9_mid_answer_then_restart_leaves_no_answer_thinking(slack, model_server, tmp_path):
    model_server.default = hang(["<think>deep in thought"], seconds=60)
    proc, port = start(slack, model_server, tmp_path)
    try:
        wait_healthy(proc, port)
        ts = mention(slack, port, f"<@{BOT}> a long one")
        slack.wait_for_sync(lambda: bool(model_server.requests and slack.assistant_statuses))
        proc.send_signal(signal.SIGKILL)  # a crash: no chance to clean up
        proc.wait(timeout=10)
    finally:
        proc.kill()
    # what the user would be left with: a status that Slack clears after two minutes
    assert not [m for m in slack.messages("C1", ts) if m.get("user") == "UBOT"]
    assert slack.assistant_statuses[-1]["status"] == "is thinking…"
    restarted, port = start(slack, model_server, tmp_path)
    try:
        wait_healthy(restarted, port)
        slack.wait_for_sync(lambda: "interrupted" in json.dumps(
            [m.get("blocks") for m in slack.messages("C1", ts) if m.get("user") == "UBOT"]),
            timeout=10)
        [reply] = [m for m in slack.messages("C1", ts) if m.get("user") == "UBOT"]
        assert "qwqbot_retry" in json.dumps(reply["blocks"])
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0


def test_digest_run_from_the_command_line(slack, model_server, tmp_path):
    from tests.fakes.model_server import think_stream

    ts = slack.add_message("C1", user="U1", text="we agreed to ship on Friday")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": slack.api_url,
                "AIML_API_KEY": "test-key", "AIML_API_BASE_URL": model_server.base_url,
                "QWQBOT_DB": str(tmp_path / "d.db")})
    model_server.enqueue(think_stream("r", "**Decisions**\n- Ship on Friday"))
    dry = subprocess.run([sys.executable, "-m", "qwqbot", "digest", "run", "C1", "--dry-run"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "Digest of #general" in dry.stdout and "Ship on Friday" in dry.stdout
    assert "we agreed to ship on Friday" in json.dumps(model_server.requests[0].json)
    assert [m for m in slack.messages("C1") if m.get("user") == "UBOT"] == []  # dry: not posted
    model_server.enqueue(think_stream("r", "**Decisions**\n- Ship on Friday"))
    done = subprocess.run([sys.executable, "-m", "qwqbot", "digest", "run", "C1"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Posted the digest of #general (1 message)" in done.stdout
    [post] = [m for m in slack.messages("C1") if m.get("user") == "UBOT"]
    assert "Ship on Friday" in json.dumps(post["blocks"])
    assert ts
