from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from qwqbot.slack import home
from qwqbot.slack.home import home_view
from qwqbot.store.usage import WINDOWS, Totals

NOW = datetime(2024, 3, 15, 12, tzinfo=UTC).timestamp()
BERLIN = ZoneInfo("Europe/Berlin")


def scope(calls: int = 3, tokens: int = 12_345) -> dict[str, Totals]:
    t = Totals(calls=calls, answers=calls, prompt_tokens=2_000, reasoning_tokens=8_000, answer_tokens=2_345,
               total_tokens=tokens, failures=0, cut_off=0, avg_latency_s=20.0 if calls else None)
    return {label: t for label, _ in WINDOWS}


def digest(channel: str = "C1", **row: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": 1, "channel_id": channel, "kind": "daily", "day": None, "hour": 9,
                            "minute": 0, "tz": "Europe/Berlin", "last_status": "posted",
                            "last_period_end": NOW - 3600,
                            "next_run": datetime(2024, 3, 16, 9, tzinfo=BERLIN)}
    base.update(row)
    return base


def validate(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the view the way slack_sdk does, plus the limits it does not count; return the blocks."""
    View(**view).validate_json()
    blocks = view["blocks"]
    assert view["type"] == "home"
    assert 0 < len(blocks) <= 100
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        assert parsed.to_dict() == block  # validates, and nothing was dropped as unknown
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert block["text"]["text"].count("```") % 2 == 0
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
    return list(blocks)


def texts(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts)


def headers(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "header"]


def test_normal_user_sees_intro_usage_and_digests():
    view = home_view(user_id="U1", is_admin=False, own=scope(), quota=(12_345, 50_000), digests=[digest()])
    blocks = validate(view)
    assert headers(blocks) == ["qwqbot", "Your usage", "Digests in your channels"]
    text = texts(blocks)
    for how in ("mention me", "thread", "DM", "`/qwq QUESTION`", "`/qwq private QUESTION`",
                "`/qwq digest daily 09:00`", "`/qwq usage`", "`/qwq settings`", "Show more", "👍", "👎",
                "Regenerate"):
        assert how in text, how
    assert "Today: 12,345 of 50,000 tokens" in text
    assert "```" in text and "reasoning" in text
    assert "<#C1> · every day at 09:00 (Europe/Berlin)" in text
    next_run = int(datetime(2024, 3, 16, 9, tzinfo=BERLIN).timestamp())
    assert f"Next run: <!date^{next_run}^{{date_short_pretty}} at {{time}}|Sat 16 Mar 2024 09:00 CET>" in text
    assert "Last run: :white_check_mark: posted (messages up to <!date^" in text


def test_normal_user_never_sees_workspace_data_even_if_passed():
    view = home_view(user_id="U1", is_admin=False, own=scope(), quota=None, digests=[],
                     workspace=scope(calls=99), top=[("U9", 1)], feedback={"up": 1, "down": 0},
                     access=[{"channel_id": "C9", "rule": "deny"}])
    blocks = validate(view)
    assert "Workspace" not in headers(blocks)
    assert "<@U9>" not in texts(blocks) and "<#C9>" not in texts(blocks)
    assert "Today:" not in texts(blocks)  # no quota, no quota line


def test_admin_sees_the_workspace():
    view = home_view(user_id="U1", is_admin=True, own=scope(), quota=None, digests=[digest()],
                     workspace=scope(calls=40, tokens=2_500_000), top=[("U2", 2_500_000), ("U1", 12_345)],
                     feedback={"up": 12, "down": 3},
                     access=[{"channel_id": "C7", "rule": "allow", "set_by": "U1"},
                             {"channel_id": "C8", "rule": "deny"}])
    blocks = validate(view)
    assert headers(blocks) == ["qwqbot", "Your usage", "Digests in your channels", "Workspace"]
    start = blocks.index(home._header("Workspace"))
    assert blocks[start - 1]["type"] == "divider"
    workspace = blocks[start:]
    text = texts(workspace)
    assert "2.5M" in text
    assert "Average model time per call (30 days): 20 s" in text
    assert "1. <@U2> — 2.5M tokens\n2. <@U1> — 12,345 tokens" in text
    assert "👍 12 / 👎 3" in text
    assert "<#C7> — :large_green_circle: allowed (by <@U1>)" in text
    assert "<#C8> — :red_circle: denied" in text


def test_admin_with_no_rules_and_no_usage():
    view = home_view(user_id="U1", is_admin=True, own=scope(calls=0, tokens=0), quota=(0, 50_000),
                     digests=[], workspace=scope(calls=0, tokens=0), top=[], feedback={"up": 0, "down": 0},
                     access=[])
    text = texts(validate(view))
    assert "No questions in the last 30 days." in text
    assert "No model calls in the last 30 days." in text
    assert "Average model time" not in text
    assert "_Nobody yet._" in text
    assert "No rules set" in text
    assert "Today: 0 of 50,000 tokens" in text


def test_no_digests_says_how_to_set_one():
    blocks = validate(home_view(user_id="U1", is_admin=False, own=scope(), quota=None, digests=[]))
    assert "None yet — set one with `/qwq digest daily 09:00` in a channel." in texts(blocks)


def test_digest_variants():
    rows = [
        digest("C1", kind="weekly", day=0, hour=9, minute=30, tz="UTC", last_status=None,
               last_period_end=None, next_run=None),
        digest("C2", last_status="failed", last_period_end=None),
        digest("C3", last_status="empty"),
        digest("C4", last_status="running"),
        digest("C5", last_status="odd<status>"),
    ]
    text = texts(validate(home_view(user_id="U1", is_admin=False, own=scope(), quota=None, digests=rows)))
    assert "<#C1> · every Monday at 09:30 (UTC)\nNext run: not scheduled · Last run: none yet" in text
    assert "Last run: :warning: failed\n" in text + "\n"
    assert ":zzz: nothing to summarise" in text
    assert ":hourglass_flowing_sand: running now" in text
    assert "odd&lt;status&gt;" in text


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize("count", [0, 1, 29, 30, 31, 500])
def test_many_digests_are_capped(admin, count):
    rows = [digest(f"C{i:04d}") for i in range(count)]
    view = home_view(user_id="U1", is_admin=admin, own=scope(), quota=(1, 2), digests=rows,
                     workspace=scope() if admin else None, top=[("U2", 5)] if admin else None,
                     feedback={"up": 1, "down": 1} if admin else None, access=[] if admin else None)
    blocks = validate(view)
    text = texts(blocks)
    listed = sum(1 for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("<#C"))
    if count <= home.MAX_DIGESTS:
        assert listed == count
        assert "more." not in text
    else:
        assert listed == home.MAX_DIGESTS - 1
        assert f"…and {count - listed:,} more." in text
        assert "<#C0000>" in text and f"<#C{count - 1:04d}>" not in text
    assert ("Workspace" in headers(blocks)) is admin


def test_the_block_budget_holds_when_digests_are_allowed_more_room(monkeypatch):
    monkeypatch.setattr(home, "MAX_DIGESTS", 1_000)
    rows = [digest(f"C{i}") for i in range(1_000)]
    view = home_view(user_id="U1", is_admin=True, own=scope(), quota=None, digests=rows, workspace=scope(),
                     top=[], feedback={"up": 0, "down": 0}, access=[])
    blocks = validate(view)
    assert len(blocks) == 100
    assert blocks[-1]["text"]["text"].startswith("*Channel access*")  # the admin part is kept whole
    assert "more." in texts(blocks)


def test_many_access_rules_fit_one_section():
    access = [{"channel_id": f"C{i:010d}", "rule": "allow" if i % 2 else "deny", "set_by": f"U{i:010d}"}
              for i in range(1_000)]
    blocks = validate(home_view(user_id="U1", is_admin=True, own=scope(), quota=None, digests=[],
                                access=access))
    rules = blocks[-1]["text"]["text"]
    shown = rules.count("<#C")
    assert 0 < shown <= home.MAX_ACCESS_LINES
    assert rules.endswith(f"…and {1_000 - shown:,} more (`/qwq admin list`).")


def test_long_top_list_is_capped():
    top = [(f"U{i}", 100_000 - i) for i in range(500)]
    blocks = validate(home_view(user_id="U1", is_admin=True, own=scope(), quota=None, digests=[], top=top))
    assert texts(blocks).count("<@U") == 10


def test_fit_never_leaves_a_code_block_open():
    text = "intro\n```\n" + "\n".join("x" * 50 for _ in range(100)) + "\n```"
    fitted = home._fit(text, 1000)
    assert len(fitted) <= 1000
    assert fitted.count("```") % 2 == 0
    assert fitted.endswith("…")
    assert home._fit("short") == "short"


def test_admin_sees_how_the_bots_prompt_count_compares_with_the_servers():
    from qwqbot.store.usage import PromptDrift

    drift = PromptDrift(calls=12, estimated=50_500, reported=50_000)
    view = home_view(user_id="U1", is_admin=True, own=scope(), quota=None, digests=[], workspace=scope(),
                     drift=drift)
    blocks = validate(view)
    workspace = texts(blocks[blocks.index(home._header("Workspace")):])
    assert "Prompt size (7 days): the bot counted 50,500 tokens, the server 50,000 (1.01×) over 12 calls" \
        in workspace
    not_admin = home_view(user_id="U1", is_admin=False, own=scope(), quota=None, digests=[], drift=drift)
    assert "Prompt size" not in texts(validate(not_admin))
