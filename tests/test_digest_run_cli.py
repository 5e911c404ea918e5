"""`qwqbot digest run` in a terminal: a real subprocess against the loopback fakes. Its output
is its own lines; whatever goes wrong is one of them, with a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.model_server import think_stream


def digest(*args: str, slack, model_server, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
    env.update({"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": slack.api_url,
                "AIML_API_KEY": "test-key", "AIML_API_BASE_URL": model_server.base_url,
                "QWQBOT_DB": str(tmp_path / "d.db")})
    return subprocess.run([sys.executable, "-m", "qwqbot", "digest", "run", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_a_digest_prints_only_its_own_line(slack, model_server, tmp_path):
    slack.add_message("C1", user="U1", text="we agreed to ship on Friday")
    model_server.enqueue(think_stream("r", "**Decisions**\n- Ship on Friday"))
    done = digest("C1", slack=slack, model_server=model_server, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Posted the digest of #general (1 message).\n"
    assert done.stderr == ""  # no INFO lines of the history read, the post, the scheduler


@pytest.mark.parametrize(("channel", "expected"), [
    ("C404", "qwqbot: the digest could not be made: Slack has no channel C404 that the bot "
             "can see: check the id (in Slack, the channel's name, then About) and, for a "
             "private channel, invite the bot there first (/invite @qwqbot) (Slack said "
             "channel_not_found)"),
    ("C2", "qwqbot: the digest could not be made: the bot is not in #random: invite it there "
           "first (/invite @qwqbot) (Slack said not_in_channel)"),
], ids=["unknown channel", "bot not in it"])
def test_a_channel_the_bot_cannot_read_is_one_line_and_exit_1(slack, model_server, tmp_path,
                                                              channel, expected):
    slack.add_channel("C2", name="random", members={"U1"}, bot_is_member=False)
    done = digest(channel, slack=slack, model_server=model_server, tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [expected]
    assert done.stdout == ""
    assert model_server.requests == []  # nothing was asked of the model


@pytest.mark.parametrize(("args", "expected"), [
    (["#general"], "qwqbot: '#general' is not a channel id: give the id, such as C0123456789"),
    (["C1", "--tz", "Mars/Olympus"],
     "qwqbot: --tz 'Mars/Olympus' is not a time zone: give an IANA name such as Europe/Berlin"),
    (["C1", "--hours", "0"], "qwqbot: --hours should be above 0 (got 0)"),
], ids=["a name", "a time zone", "hours"])
def test_arguments_that_cannot_work_are_refused_before_slack_is_asked(slack, model_server,
                                                                       tmp_path, args, expected):
    done = digest(*args, slack=slack, model_server=model_server, tmp_path=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(expected)
    assert slack.calls == []


def test_a_dry_run_posts_nothing_and_prints_the_digest(slack, model_server, tmp_path):
    slack.add_message("C1", user="U1", text="we agreed to ship on Friday")
    model_server.enqueue(think_stream("r", "**Decisions**\n- Ship on Friday"))
    done = digest("C1", "--dry-run", slack=slack, model_server=model_server, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## Digest of #general")
    assert "Ship on Friday" in done.stdout and done.stderr == ""
    assert not [m for m in slack.messages("C1") if m.get("user") == "UBOT"]
    assert "we agreed" in json.dumps(model_server.requests[-1].json)
