"""What `qwqbot run` logs as it starts, at the default level: the line that says it is up
(mode, bot name, where) comes first, with no library bookkeeping before it. Real processes,
with the tokens in the environment as deploy platforms set them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.slack.harness import SECRET, free_port


def start_up_log(slack, model_server, tmp_path: Path, *args: str, **env: str) -> list[str]:
    """The bot's log lines from its start until it stopped, after SIGTERM once it was up:
    once it has answered Slack (a plain channel message, acknowledged and left alone), as
    `serve` takes SIGTERM gracefully only after ``Bot.start`` has returned."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    full_env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": slack.api_url,
                     "AIML_API_KEY": "test-key", "AIML_API_BASE_URL": model_server.base_url,
                     "QWQBOT_DB": str(tmp_path / "s.db"), **env})
    proc = subprocess.Popen([sys.executable, "-m", "qwqbot", "run", *args], env=full_env,
                            cwd=tmp_path, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "qwqbot running as" in line:
                up.set()
        up.set()  # the process ended: whatever it said is all there is

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        up.wait(timeout=60)
        if "--mode" in args:
            health = f"http://127.0.0.1:{args[args.index('--port') + 1]}/healthz"
            assert httpx.get(health, timeout=10).status_code == 200
        else:
            slack.wait_ack_sync(slack.send_socket_event(
                {"type": "message", "channel": "C1", "user": "U1", "text": "hello",
                 "ts": slack.add_message("C1", user="U1", text="hello")}), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, lines
    finally:
        proc.kill()
    reader.join(timeout=10)
    return lines


def _message(line: str) -> str:
    """'2026-12-01 12:00:00,000 INFO qwqbot.slack.server: text' -> 'INFO qwqbot.slack.server: text'"""
    return line.split(" ", 2)[2]


def test_socket_mode_leads_with_the_line_that_says_it_is_up(slack, model_server, tmp_path):
    lines = start_up_log(slack, model_server, tmp_path, SLACK_APP_TOKEN="xapp-test-token")
    assert _message(lines[0]) == "INFO qwqbot.slack.server: qwqbot running as @qwqbot in Socket Mode"
    text = "\n".join(lines)
    assert "will be unused" not in text  # Bolt's warning about the token in the environment
    assert "apscheduler" not in text and "Adding job" not in text
    assert "slack_bolt" not in text
    assert [_message(line) for line in lines[1:]] == [
        "INFO qwqbot.slack.server: shutting down: no new questions; 0 answers in flight",
        "INFO qwqbot.slack.server: stopped"]


@pytest.mark.parametrize("level", ["INFO"])
def test_http_mode_leads_with_its_address(slack, model_server, tmp_path, level):
    port = free_port()
    lines = start_up_log(slack, model_server, tmp_path, "--mode", "http", "--port", str(port),
                         SLACK_SIGNING_SECRET=SECRET, QWQBOT_LOG_LEVEL=level)
    # The port is served before Slack is asked who the bot is (a health check sees it at
    # once), so the first line gives the mode and address, the next one the bot's name.
    assert [_message(line) for line in lines[:2]] == [
        f"INFO qwqbot.slack.server: qwqbot listening in HTTP mode on port {port} "
        "(POST /slack/events); ready once Slack answers auth.test",
        f"INFO qwqbot.slack.server: qwqbot running as @qwqbot in HTTP mode on port {port} "
        "(POST /slack/events)"]
    assert "will be unused" not in "\n".join(lines)
