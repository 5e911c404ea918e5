"""Smoke tests of bench/load.py: tiny runs judged on the structure of what they report and on
honesty (answers Slack never showed are reported lost), never on timing - timing figures
depend on the machine. The runs go through the command line in a subprocess, as a person
runs the bench; the pieces that decide what counts (the model's script, which calls show
answer words or a final answer, which calls Slack accepted) are checked directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(200)

SUMMARY_KEYS = {"n", "missing", "p50", "p99", "max"}


def run_bench(tmp_path: Path, *args: str, status: int = 0) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), *args, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def assert_well_formed(run: dict[str, Any]) -> None:
    assert run["percentile_method"] == "nearest-rank"
    for key in ("final_s", "sign_of_life_s", "first_words_s", "ack_ms", "ack_floor_ms"):
        assert set(run[key]) >= SUMMARY_KEYS, key
    assert run["final_s"]["n"] == run["answers"] == run["config"]["answers"]
    assert run["delivered"] + run["lost"] == run["answers"]
    assert run["final_s"]["missing"] == run["lost"]
    rl = run["rate_limited"]
    assert sum(v["limited"] for v in rl["by_method"].values()) == rl["limited"] == sum(rl["by_rule"].values())
    assert sum(v["injected"] for v in rl["by_method"].values()) == rl["injected"]
    for method, c in run["calls"].items():
        assert c["accepted"] + c["limited"] + c["injected"] <= c["calls"], method
    assert run["streams_started"] == run["calls"].get("chat.startStream", {}).get("accepted", 0)
    assert run["bot_exit_code"] == 0 and run["ran_ok"] is True
    assert run["peak_rss_mb"] is not None and run["peak_rss_mb"] > 0
    assert {t["name"] for t in run["targets"]} >= {"no answer lost", "first sign of life p99 < 1 s"}
    assert run["targets_met"] == all(t["ok"] for t in run["targets"])


def assert_all_delivered(run: dict[str, Any]) -> None:
    assert run["lost"] == 0 and run["delivered"] == run["answers"]
    assert run["final_s"]["p99"] is not None and run["total_s"] is not None
    assert run["sign_of_life_s"]["missing"] == 0
    assert sum(run["sign_of_life_s"]["by"].values()) == run["answers"]
    assert run["first_words_s"]["missing"] == 0
    # the final message carries the answer's words, so they cannot come later than it
    assert run["first_words_s"]["max"] <= run["final_s"]["max"]
    shapes = run["final_messages"]
    assert shapes["markdown"] + shapes["section"] == run["answers"]
    assert run["model_requests"] >= run["answers"]
    [lost] = [t for t in run["targets"] if t["name"] == "no answer lost"]
    assert lost["ok"] is True


def test_single_scenario_with_slacks_limits(tmp_path):
    report, stdout = run_bench(tmp_path, "--scenario", "single", "--limits", "on")
    [run] = report["runs"]
    assert (run["scenario"], run["limits"], run["answers"], run["config"]["model_seconds"]) == (
        "single", "on", 1, 6.0)
    assert_well_formed(run)
    assert_all_delivered(run)
    vs = run["first_words_vs_model_end"]
    assert vs["model_end_s"]["missing"] == 0 and vs["before"] + vs["after"] == 1
    assert "first words before the model stream ended" in {t["name"] for t in run["targets"]}
    assert "### single, Slack's limits on" in stdout and "### Summary" in stdout
    assert "| no answer lost | 0 lost of 1 | PASS |" in stdout


def test_adhoc_run_with_limits_on_and_off(tmp_path):
    report, stdout = run_bench(tmp_path, "--answers", "4", "--channels", "2", "--model-seconds", "1",
                               "--limits", "both")
    on, off = report["runs"]
    assert (on["scenario"], on["limits"], off["scenario"], off["limits"]) == ("custom", "on", "custom", "off")
    for run in (on, off):
        assert run["config"]["channels"] == 2 and run["answers"] == 4
        assert_well_formed(run)
        assert_all_delivered(run)
    assert off["rate_limited"]["limited"] == 0
    assert "### Slack's limits on vs off" in stdout
    assert report["ran_ok"] is True and report["targets_met"] == (on["targets_met"] and off["targets_met"])


def test_answers_slack_never_showed_are_reported_lost(tmp_path):
    # Every delivery call answered 429: nothing reaches the thread, and the bench says so
    # (with --strict the missed target is the exit status).
    report, stdout = run_bench(tmp_path, "--answers", "2", "--channels", "1", "--model-seconds", "0.5",
                               "--inject-429", "1", "--timeout", "5", "--strict", status=1)
    [run] = report["runs"]
    assert_well_formed(run)
    assert run["lost"] == 2 and run["delivered"] == 0 and run["total_s"] is None
    assert run["final_s"]["p50"] is None and run["final_s"]["missing"] == 2
    assert run["final_messages"] == {"markdown": 0, "section": 0, "with_feedback": 0}
    assert run["rate_limited"]["injected"] > 0
    [lost] = [t for t in run["targets"] if t["name"] == "no answer lost"]
    assert lost["ok"] is False and report["targets_met"] is False
    assert "| no answer lost | 2 lost of 2 | MISS |" in stdout


def test_unknown_combinations_are_refused():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--scenario", "all",
                           "--answers", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not all" in done.stderr


# -- the pieces that decide what counts ---------------------------------------------------


def test_percentiles_are_nearest_rank_and_missing_samples_rank_last():
    from bench.load import percentile, summary

    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile(values[:6], 99) == 6.0  # fewer than 100 samples: p99 is the maximum
    s = summary([2.0, None, 1.0])
    assert s == {"n": 3, "missing": 1, "p50": 2.0, "p99": None, "max": None}


@pytest.mark.parametrize("seconds", [0.5, 1.0, 3.0, 5.0, 6.0])
def test_model_script_thinks_then_streams_a_recognisable_answer(seconds):
    from bench.load import ANSWER_TEXT, ANSWER_WORDS, FINAL_SENTENCE, model_script, words

    script = model_script(seconds)
    parts = [str(p) for p in script.parts]
    end = parts.index("\n</think>\n\n")
    assert parts[0] == "<think>\n" and end > 1
    answer = parts[end + 1:]
    assert "".join(answer) == ANSWER_TEXT and ANSWER_TEXT.endswith(FINAL_SENTENCE)
    assert len(answer) >= 2  # the answer arrives over time, not in one piece
    assert all(words(p) & ANSWER_WORDS for p in answer)
    assert not any(words(p) & ANSWER_WORDS for p in parts[:end + 1])
    assert script.chunk_delay * len(parts) == pytest.approx(seconds)


def test_what_counts_as_answer_words_and_as_a_final_message():
    from bench.load import FINAL_SENTENCE, final_shape, has_feedback, shows_answer_words

    progress = {"text": "Thinking… 3 s · 120 characters of reasoning",
                "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "Thinking…"}]}]}
    assert not shows_answer_words("chat.update", progress)
    assert shows_answer_words("chat.appendStream", {"channel": "C1", "ts": "1.2",
                                                    "markdown_text": "Forty-two"})
    reasoning_only = {"text": "", "attachments": [{"text": f"Forty-two {FINAL_SENTENCE}"}], "blocks": []}
    assert not shows_answer_words("chat.update", reasoning_only)
    assert final_shape("chat.update", reasoning_only) is None
    new = {"blocks": [{"type": "markdown", "text": f"Forty-two. {FINAL_SENTENCE}"},
                      {"type": "context_actions", "elements": []}]}
    old = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": FINAL_SENTENCE}},
                      {"type": "actions", "elements": []}]}
    assert final_shape("chat.postMessage", new) == "markdown" and has_feedback(new)
    assert final_shape("chat.update", old) == "section" and has_feedback(old)
    assert final_shape("chat.stopStream", new) is None  # the brief: the final message is posted or updated
    assert not has_feedback({"blocks": [{"type": "markdown", "text": "x"}]})


def test_timeline_counts_only_the_calls_slack_accepted():
    from bench.load import FINAL_SENTENCE, BenchSlack, Mention, Timeline

    final = {"blocks": json.dumps([{"type": "markdown", "text": FINAL_SENTENCE}])}
    with BenchSlack(bot_token="xoxb-t", rate_limits=True) as slack, httpx.Client(
            base_url=slack.api_url, headers={"Authorization": "Bearer xoxb-t"}) as http:
        slack.add_user("U1", name="u1")
        slack.add_channel("C1", name="c1", members={"U1"})
        ts = slack.add_message("C1", user="U1", text="hi")
        other = slack.add_message("C1", user="U1", text="another thread")
        m = Mention(0, "C1", "U1", ts, "{}", sent=0.0)
        timeline = Timeline(slack, [m])

        def call(method: str, **params: Any) -> dict[str, Any]:
            return dict(http.post(method, data=params).json())

        assert call("assistant.threads.setStatus", channel_id="C1", thread_ts=other, status="x")["ok"]
        assert call("assistant.threads.setStatus", channel_id="C1", thread_ts=ts, status="is thinking")["ok"]
        posted = call("chat.postMessage", channel="C1", thread_ts=ts, text="placeholder")
        slack.rate_limit_next("chat.update")
        assert not call("chat.update", channel="C1", ts=posted["ts"], **final)["ok"]  # 429
        assert not call("chat.update", channel="C1", ts="1.000001", **final)["ok"]  # no such message
        assert call("chat.update", channel="C1", ts=posted["ts"], **final)["ok"]
        timeline.poll()
        updates = slack.calls_to("chat.update")
        statuses = slack.calls_to("assistant.threads.setStatus")
    assert m.life is statuses[1] and m.life_kind == "status"
    assert m.final is updates[2] and m.final_shape == "markdown" and timeline.finals == 1
    assert m.words is updates[2]  # the final sentence holds answer words; the placeholder none
