"""bench/soak.py works: its ``--quick`` run through the command line, judged on the structure
and consistency of what it reports, never on timing; and the pieces that decide what counts
(answered, told an error, lost; the fault schedule) checked directly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import soak
from bench.load import Accepted
from tests.fakes.slack_api import Call

ROOT = Path(__file__).resolve().parent.parent
FAULTS = {"slack_5xx", "slack_429", "model_429", "model_endless", "model_huge_error", "db_lock"}


@pytest.mark.timeout(200)
def test_quick_run_reports_every_question_and_fault(tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    f: dict[str, Any] = json.loads(out.read_text())
    q = f["questions"]
    assert q["asked"] == 20  # 20 s at 60 a minute
    assert q["answered"] + q["told"] + q["lost"] == q["asked"]
    assert q["answered"] > 0
    for key in ("asked", "answered", "told", "lost"):
        assert sum(k[key] for k in f["by_kind"].values()) == q[key]
    assert len(f["lost_questions"]) == q["lost"]
    assert f["answer_s"]["n"] == q["answered"]
    assert f["first_sign_s"]["n"] == q["answered"] + q["told"]
    assert {x["name"] for x in f["faults"]} == FAULTS
    lock = next(x for x in f["faults"] if x["name"] == "db_lock")
    assert lock["seconds"] >= 5.0  # the write lock was really held
    assert f["loop"]["samples"] > 0 and f["loop"]["worst_stall_ms"] >= 0
    assert f["peak_rss_mb"] > 0
    assert f["ran_ok"] is True and f["percentile_method"] == "nearest-rank"
    assert "questions asked / answered / told an error / lost" in done.stdout
    assert "xoxb-" not in done.stdout + done.stderr + json.dumps(f["bot_log_tail"])


def recorder() -> Any:
    return SimpleNamespace(accepted=[], calls=[], response_posts=[])


def accept(slack: Any, method: str, at: float, *, channel: str = "C1", ts: str | None = None,
           thread_ts: str | None = None, **params: Any) -> None:
    call = Call(method=method, params=params, token="t", at=at, wall=at)
    slack.calls.append(call)
    slack.accepted.append(Accepted(id(call.params), method, channel, ts, thread_ts))


def test_a_question_counts_only_for_what_slack_accepted_in_its_thread():
    slack = recorder()
    tracker = soak.Tracker(slack)
    answered = soak.Question(1, "mention", "C1", "U1", ("C1", "100.1"), sent=10.0)
    told = soak.Question(2, "mention", "C1", "U2", ("C1", "200.1"), sent=10.0)
    lost = soak.Question(3, "dm", "D3", "U3", ("D3", "300.1"), sent=10.0)
    accept(slack, "assistant.threads.setStatus", 10.5, thread_ts="100.1", status="is thinking…")
    accept(slack, "chat.startStream", 11.0, ts="100.2", thread_ts="100.1")
    marked = [{"type": "markdown", "text": "Forty-two. Soak answer 1 ends here."}]
    accept(slack, "chat.update", 12.0, ts="100.2", blocks=marked)  # the stream's message
    retry = [{"type": "actions", "elements": [{"type": "button", "action_id": "qwqbot_retry",
                                               "value": "7"}]}]
    accept(slack, "chat.postMessage", 13.0, ts="200.2", thread_ts="200.1", blocks=retry)
    # a sign of life and an answer of someone else's question show nothing for question 3
    accept(slack, "assistant.threads.setStatus", 10.2, channel="D3", thread_ts="300.1", status="")
    accept(slack, "chat.postMessage", 14.0, channel="D4", ts="400.2", thread_ts="400.1",
           blocks=[{"type": "markdown", "text": "Soak answer 4 ends here."}])
    for q in (answered, told, lost):
        tracker.resolve(q)
    assert (answered.sign, answered.answered, answered.told) == (10.5, 12.0, None)
    assert (told.sign, told.answered, told.told) == (13.0, None, 13.0)
    assert (lost.sign, lost.answered, lost.told) == (None, None, None)
    assert [soak.outcome(q, deadline=20.0) for q in (answered, told, lost)] == ["answered", "told", "lost"]
    assert soak.outcome(answered, deadline=11.0) == "lost"  # after the drain it does not count


def test_a_command_is_found_by_the_bots_post_and_told_through_its_response_url():
    slack = recorder()
    tracker = soak.Tracker(slack)
    q = soak.Question(5, "command", "C2", "U1", None, sent=10.0, key="soak5")
    tracker.resolve(q)
    assert q.thread is None and not q.resolved
    accept(slack, "chat.postMessage", 10.3, channel="C2", ts="500.1",
           text="<@U1> asked: question 5: what is six times seven?")
    slack.response_posts.append(("soak5", 11.0))
    slack.response_posts.append(("soak6", 10.5))  # another command's
    tracker.resolve(q)
    assert q.thread == ("C2", "500.1") and q.sign == 10.3 and q.told == 11.0


def test_an_ephemeral_to_the_asker_is_an_error_told():
    slack = recorder()
    tracker = soak.Tracker(slack)
    q = soak.Question(8, "mention", "C1", "U1", ("C1", "800.1"), sent=10.0)
    accept(slack, "chat.postEphemeral", 9.0, user="U1", text="before it was asked")
    accept(slack, "chat.postEphemeral", 12.0, user="U2", text="someone else")
    tracker.resolve(q)
    assert q.told is None
    accept(slack, "chat.postEphemeral", 13.0, user="U1", text="couldn't post")
    tracker.resolve(q)
    assert q.told == 13.0


def test_fault_schedule_rounds():
    def plan(seconds: float, *, quick: bool = False, faults: bool = True) -> soak.Plan:
        return soak.Plan(seconds=seconds, rate=30, model_seconds=3, drain=10, faults=faults, seed=0,
                         quick=quick)

    quick = soak.fault_plan(plan(20, quick=True))
    assert {name for _, name in quick} == FAULTS and len(quick) == 6
    assert all(at < 20 for at, _ in quick)
    ten = soak.fault_plan(plan(600))
    assert len(ten) == 6 * 6 and all(at < 600 for at, _ in ten)
    assert [at for at, name in ten if name == "slack_5xx"] == [10, 110, 210, 310, 410, 510]
    assert soak.fault_plan(plan(600, faults=False)) == []


def test_the_fault_under_way_names_a_stall():
    faults = [soak.Fault("slack_5xx", 100.0, 8.0), soak.Fault("db_lock", 200.0, 5.0)]
    assert soak.fault_at(faults, 104.0) == "slack_5xx"
    assert soak.fault_at(faults, 204.9) == "db_lock"
    assert soak.fault_at(faults, 150.0) is None
