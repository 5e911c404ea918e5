"""Smoke test of bench/load.py: a tiny run of each scenario, judged on correctness only.

Timing figures depend on the machine, so they are never asserted here; only that every
answer arrived, the chat.update budget held, 429s were really served and the bot stopped
cleanly (bench/load.py exits 0 exactly then).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--answers", "6", "--model-seconds", "0.3", "--channels", "2", "--timeout", "60"]

pytestmark = pytest.mark.timeout(200)


def run_bench(tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), *SMALL, *extra,
                           "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    [scenario] = report["scenarios"]
    assert report["correct"] is True
    return dict(scenario)


def assert_all_answered(s: dict[str, Any]) -> None:
    assert s["answers"] == 6
    assert s["answers_completed"] == 6 and s["missing"] == 0
    assert s["model_requests"] == 6
    assert s["ack_ms"]["errors"] == 0 and s["first_progress_ms"]["missing"] == 0
    assert s["chat_update"]["max_per_minute"] <= s["chat_update"]["budget"] == 300
    assert s["bot_exit_code"] == 0
    assert s["peak_rss_mb"] is not None and s["peak_rss_mb"] > 0
    assert s["percentile_method"] == "nearest-rank"


@pytest.mark.parametrize("client", ["httpx", "aiohttp"])
def test_normal_run_answers_every_mention_within_the_budget(tmp_path, client):
    s = run_bench(tmp_path, "--scenario", "normal", "--client", client)
    assert s["scenario"] == "normal" and s["config"]["client"] == client
    assert s["ack_floor_ms"]["n"] == 6
    assert_all_answered(s)
    assert s["rate_limited"] == 0


def test_with_429s_every_answer_still_arrives(tmp_path):
    s = run_bench(tmp_path, "--rate-limit-share", "0.3", "--scenario", "429")
    assert s["scenario"] == "429" and s["config"]["rate_limit_share"] == 0.3
    assert_all_answered(s)
    assert s["rate_limited"] > 0
    assert sum(s["rate_limited_by_method"].values()) == s["rate_limited"]
    assert set(s["rate_limited_by_method"]) <= {"chat.postMessage", "chat.update"}


def test_percentiles_are_nearest_rank():
    from bench.load import max_in_window, percentile

    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0
    assert percentile(values[:6], 99) == 6.0  # fewer than 100 samples: p99 is the maximum
    assert max_in_window([0.0, 10.0, 59.9, 60.0, 119.0]) == 3  # [0, 60) and [10, 70) hold 3


def test_fake_slack_rate_limit_share_is_seeded_and_counted():
    import httpx

    from tests.fakes.slack_api import FakeSlack

    def outcomes(seed: int) -> tuple[list[int], int]:
        auth = {"Authorization": "Bearer xoxb-test-token"}
        # Injected 429s only: Slack's own limits would refuse some of these calls too.
        with FakeSlack(rate_limits=False) as slack, \
                httpx.Client(base_url=slack.api_url, headers=auth) as http:
            slack.add_channel("C1", name="general")
            slack.rate_limit_share(["chat.postMessage"], 0.5, retry_after=2, seed=seed)
            statuses = []
            for i in range(30):
                r = http.post("chat.postMessage", json={"channel": "C1", "text": str(i)})
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["Retry-After"] == "2" and r.json()["error"] == "ratelimited"
            assert http.post("auth.test").status_code == 200  # other methods are untouched
            assert slack.rate_limited == statuses.count(429) == len(slack.rate_limited_calls)
            assert len(slack.messages("C1")) == statuses.count(200)
            slack.rate_limit_share(["chat.postMessage"], 0.0)
            assert http.post("chat.postMessage", json={"channel": "C1", "text": "x"}).status_code == 200
            return statuses, slack.rate_limited

    first, limited = outcomes(7)
    assert 0 < limited < 30
    assert outcomes(7)[0] == first  # same seed, same calls refused
