"""The offline try-out the README points newcomers to (``python -m tests.fakes.tryout``), run
as they run it: from the checkout, as its own process, with no tokens in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_tryout_shows_check_ask_an_answer_in_slack_and_a_digest(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env["TMPDIR"] = str(tmp_path)  # its working folder, so the test can see it is cleaned up
    done = subprocess.run([sys.executable, "-m", "tests.fakes.tryout"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    steps = ["$ qwqbot check", '$ qwqbot ask "How many r\'s are in strawberry?"',
             "$ qwqbot run", "Alice, in #general: @qwqbot Is 1001 a prime number?",
             "qwqbot, in the thread:", "$ kill -TERM", "$ qwqbot digest run C1",
             "qwqbot posted in #general:"]
    assert [out.index(step) for step in steps] == sorted(out.index(step) for step in steps)
    assert "ok  configuration: complete, the bot will run in Socket Mode" in out
    assert "ok  Socket Mode: SLACK_APP_TOKEN accepted" in out
    assert "There are **3** r's in *strawberry*" in out
    assert "INFO qwqbot.slack.server: qwqbot running as @qwqbot in Socket Mode" in out
    # the answer, then its reasoning attachment under it, as Slack received them
    assert "  │ No: **1001 = 7 × 11 × 13**, so it is not prime." in out
    assert "  ▸ Reasoning · " in out and "  ┆ 1001 ends in 1" in out
    assert "Posted the digest of #general (5 messages)." in out
    assert "  │ ## Digest of #general" in out and "Bob: fix the flaky migration test" in out
    assert "FAIL" not in out and "!!" not in out
    assert list(tmp_path.iterdir()) == []  # its folder, database included, is gone
