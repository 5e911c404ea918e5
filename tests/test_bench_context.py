"""Smoke test of bench/context.py at tiny sizes: it runs, and its numbers add up. Never timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "context.py"


def test_benchmark_runs_and_reports_consistent_numbers(tmp_path):
    out = tmp_path / "result.json"
    db = tmp_path / "bench.db"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--messages", "20000", "--thread", "300", "--iterations", "20",
         "--inserts", "200", "--db", str(db), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=50, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "context, 300-msg thread p99" in proc.stdout  # the table
    result = json.loads(out.read_text())
    assert set(result) >= {"config", "build", "context", "context_small", "save_message", "claim_event",
                           "targets"}

    build = result["build"]
    assert build["messages"] == 20000
    assert build["channels"] == 500 and build["users"] == 200
    assert build["seconds"] > 0 and build["db_bytes"] > 0
    assert db.exists()  # --db keeps the database

    big, small = result["context"], result["context_small"]
    assert big["thread_messages"] == 300 and big["rows_read"] == 300
    assert big["included"] + big["omitted"] == 300
    assert big["included"] > 0
    assert small["thread_messages"] == small["rows_read"] == 50
    assert (small["included"], small["omitted"]) == (50, 0)  # a short thread is never cut
    for ctx in (big, small):
        assert ctx["iterations"] == 20
        assert 0 < ctx["estimated_tokens"] <= result["config"]["budget_tokens"]
        assert ctx["slack_calls_while_timed"] == 0
        assert all(ctx["ms"][k] > 0 for k in ("p50", "p90", "p99", "max"))
        assert ctx["ms"]["p50"] <= ctx["ms"]["p90"] <= ctx["ms"]["p99"] <= ctx["ms"]["max"]
    # Slack was asked for nothing but channel names (once per channel, during warm-up).
    assert result["slack_calls"] == ["conversations.info"]

    for name in ("save_message", "claim_event"):
        timing = result[name]
        assert timing["runs"] == 200
        assert all(timing["us"][k] > 0 for k in ("p50", "p99", "max"))
    assert result["save_message"]["stored"] == 200
    assert result["claim_event"]["claimed"] == 200
    assert set(result["targets"]["checks"]) == {"context_p99", "save_message_p99", "claim_event_p99",
                                                "turns_accounted"}
    assert result["targets"]["checks"]["turns_accounted"] is True


def test_rejects_sizes_it_cannot_lay_out(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--messages", "1000", "--thread", "2000"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert proc.returncode == 2
    assert "--messages must be at least" in proc.stderr
