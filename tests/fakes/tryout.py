"""``python -m tests.fakes.tryout``: qwqbot end to end in a minute, with no Slack workspace and
no model key.

The loopback fakes the tests use stand in for both services: a fake Slack workspace (Web API
and Socket Mode, ``tests/fakes/slack_api.py``) with Alice and Bob in #general, and a fake
OpenAI-compatible server (``tests/fakes/model_server.py``) with scripted QwQ-style answers,
reasoning included. Then the real commands run against them, each as its own process, the way
a newcomer runs them against the real services: ``qwqbot check``, ``qwqbot ask``, ``qwqbot
run`` (Socket Mode, the default) with Alice mentioning the bot, and ``qwqbot digest run``.
Each command is printed with its output, and after the mention and the digest, what Slack
received from the bot. Nothing leaves the machine, and nothing outside a temporary folder is
read or written: the commands run there, with a fresh database and no ``.env``.

Run it from the checkout, after ``pip install .``: ``.venv/bin/python -m tests.fakes.tryout``.
Exit status 0 when every step did what it should, 1 otherwise (tests/test_tryout.py runs it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tests.fakes.model_server import FakeModelServer, think_stream
from tests.fakes.slack_api import FakeSlack

BOT = "UBOT"
QUESTION = "How many r's are in strawberry?"
MENTION = "Is 1001 a prime number?"
#: the messages of #general that the digest summarises
CHANNEL_TALK = (
    ("U1", "Release plan: I'd like to ship 2.4 on Friday. Any blockers?"),
    ("U2", "The migration test is still flaky, I'll look at it today."),
    ("U1", "OK, then we ship Friday if the migration test is green by Thursday noon."),
)
# Seconds to wait for a step (a start, an answer): far above what each takes.
PATIENCE = 60.0


def scripts() -> tuple[Any, ...]:
    """The model's answers, in the order the steps ask for them; split into small parts so
    they stream, as QwQ's do."""
    return (
        think_stream("The user wants the r's in 'strawberry': s-t-r-a-w-b-e-r-r-y. One r "
                     "after the t, two after the e: three in all.",
                     "There are **3** r's in *strawberry*: one in *straw*, two in *berry*.",
                     chunk_size=12, chunk_delay=0.01),
        think_stream("1001 ends in 1, so 2 and 5 are out. 3: digits add to 2, no. 7: 7 × 143 "
                     "= 1001. So it is composite; 143 = 11 × 13.",
                     "No: **1001 = 7 × 11 × 13**, so it is not prime.\n\nA quick way to see "
                     "it: 1001 = 1000 + 1 = 10³ + 1, which factors as (10 + 1)(10² − 10 + 1) "
                     "= 11 × 91.", chunk_size=12, chunk_delay=0.05),
        think_stream("The 2.4 release: a plan, a blocker, a condition. Then a question about 1001.",
                     "**Discussed**\n- Shipping 2.4 on Friday.\n\n**Decisions**\n- Ship on "
                     "Friday if the migration test is green by Thursday noon.\n\n"
                     "**Action items**\n- Bob: fix the flaky migration test today.",
                     chunk_size=24, chunk_delay=0.01),
    )


def fake_workspace() -> FakeSlack:
    slack = FakeSlack()
    slack.add_user("U1", name="alice", real_name="Alice Archer", display_name="Alice",
                   tz="Europe/Berlin")
    slack.add_user("U2", name="bob", real_name="Bob Baker", display_name="Bob",
                   tz="Europe/Berlin")
    slack.add_channel("C1", name="general", members={"U1", "U2", BOT})
    return slack


class Tryout:
    def __init__(self, slack: FakeSlack, model: FakeModelServer, folder: Path, out: TextIO) -> None:
        self.slack, self.model, self.folder, self.out = slack, model, folder, out
        # The commands see only what the fakes need, never the caller's tokens or .env.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLACK_", "AIML_", "QWQBOT_"))}
        self.env.update({
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url, "AIML_API_KEY": "test-key",
            "AIML_API_BASE_URL": model.base_url, "QWQBOT_DB": str(folder / "qwqbot.db"),
            "NO_COLOR": "1",
        })
        self.failures: list[str] = []

    # -- printing -----------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out.write("\n".join(line.rstrip() for line in text.split("\n")) + "\n")
        self.out.flush()

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        shown = " ".join(a if " " not in a else f'"{a}"' for a in args)
        self.say(f"$ qwqbot {shown}")
        done = subprocess.run([sys.executable, "-m", "qwqbot", *args], env=self.env,
                              cwd=self.folder, capture_output=True, text=True, timeout=PATIENCE)
        for line in (done.stdout + done.stderr).splitlines():
            self.say(line)
        if done.returncode != 0:
            self.fail(f"`qwqbot {shown}` exited {done.returncode}")
        self.say()
        return done

    def fail(self, what: str) -> None:
        self.failures.append(what)
        self.say(f"!! {what}")

    def show_message(self, who: str, message: dict[str, Any]) -> None:
        """A bot message as Slack shows it: the Markdown body, then the reasoning attachment
        (collapsed in Slack behind "Show more")."""
        self.say(f"{who}:")
        for block in message.get("blocks") or []:
            if block.get("type") == "markdown":
                self.say(textwrap.indent(str(block["text"]), "  │ ", lambda _: True))
        for attachment in message.get("attachments") or []:
            self.say(f"  ▸ {attachment.get('title', '')} (collapsed in Slack)")
            self.say(textwrap.indent(textwrap.fill(str(attachment.get("text", "")), 84),
                                     "  ┆ ", lambda _: True))
        self.say()

    # -- the steps ----------------------------------------------------------------------

    def run(self) -> int:
        self.say("A fake Slack workspace (#general: Alice, Bob and the bot) and a fake model "
                 f"server are running on 127.0.0.1; the commands run in {self.folder}.\n")
        self.command("check")
        self.command("ask", QUESTION)
        self.chat_in_slack()
        self.command("digest", "run", "C1")
        digest = self.bot_posts(thread=None)
        if digest:
            self.show_message("qwqbot posted in #general", digest[-1])
        else:
            self.fail("no digest reached Slack")
        if self.failures:
            self.say("The try-out did not go as it should: " + "; ".join(self.failures))
            return 1
        self.say("That is the whole loop: configuration checked, the model asked from the "
                 "terminal, the bot answering in a thread with its reasoning, and a digest.")
        return 0

    def chat_in_slack(self) -> None:
        for user, text in CHANNEL_TALK:
            self.slack.add_message("C1", user=user, text=text)
        self.say("$ qwqbot run        # in the background: Socket Mode, as without --mode")
        bot = subprocess.Popen([sys.executable, "-m", "qwqbot", "run"], env=self.env,
                               cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        log = _Lines(bot.stdout)
        try:
            if not log.wait_for("qwqbot running as", PATIENCE):
                self.fail("the bot did not start")
                return
            self.say(log.take())
            text = f"<@{BOT}> {MENTION}"
            ts = self.slack.add_message("C1", user="U1", text=text)
            self.slack.send_socket_event({"type": "app_mention", "channel": "C1", "user": "U1",
                                          "text": text, "ts": ts})
            self.say(f"\nAlice, in #general: @qwqbot {MENTION}\n")
            try:
                self.slack.wait_for_sync(lambda: _finished(self.bot_posts(thread=ts)), PATIENCE)
            except TimeoutError:
                self.fail("no answer reached the thread")
                return
            self.show_message("qwqbot, in the thread", self.bot_posts(thread=ts)[-1])
            log.wait_for("answered", PATIENCE)
            self.say("(qwqbot run's log meanwhile)\n" + log.take() + "\n")
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                code = bot.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                bot.kill()
                code = bot.wait()
            log.join()
            self.say("$ kill -TERM <the bot>     # as a deploy platform stops it")
            self.say(log.take() + "\n")
            if code != 0:
                self.fail(f"`qwqbot run` exited {code}")

    def bot_posts(self, *, thread: str | None) -> list[dict[str, Any]]:
        """The bot's messages in #general itself (``thread`` None) or in one thread."""
        if thread is None:
            messages = [m for m in self.slack.messages("C1") if not m.get("thread_ts")]
        else:
            messages = [m for m in self.slack.messages("C1", thread) if m.get("ts") != thread]
        return [m for m in messages if m.get("user") == BOT]


def _finished(posts: list[dict[str, Any]]) -> bool:
    """The answer is final once it carries its reasoning attachment."""
    return bool(posts) and bool(posts[-1].get("attachments"))


class _Lines:
    """A child process's output, read on a thread, so the try-out can wait for a line."""

    def __init__(self, stream: Any) -> None:
        self._lines: list[str] = []
        self._new = threading.Condition()
        self._taken = 0
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._new:
                self._lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._new:
            return self._new.wait_for(lambda: any(text in line for line in self._lines) or
                                      not self._thread.is_alive(), timeout) and any(
                text in line for line in self._lines)

    def take(self) -> str:
        """The lines not shown yet."""
        with self._new:
            lines, self._taken = self._lines[self._taken:], len(self._lines)
        return "\n".join(lines)

    def join(self) -> None:
        self._thread.join(timeout=PATIENCE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.tryout",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.parse_args(argv)
    with (tempfile.TemporaryDirectory(prefix="qwqbot-tryout-") as folder,
          fake_workspace() as slack, FakeModelServer() as model):
        model.enqueue(*scripts())
        return Tryout(slack, model, Path(folder), sys.stdout).run()


if __name__ == "__main__":
    sys.exit(main())
