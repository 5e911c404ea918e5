"""Times, dates and durations for people to read, and proof that they never follow the process locale.

The last part runs every place the bot writes a date under a foreign ``LC_TIME``. A German locale is
simulated on every machine: ``datetime.strftime`` (and ``format(dt, "%a")``) hand their format to
``time.strftime`` in both CPython's C and pure-Python ``datetime``, so replacing that function makes
``%a``/``%A``/``%b``/``%B`` come out in German exactly as ``de_DE.UTF-8`` would. Where real foreign
locales are installed (``locale -a``), each is also used for real.
"""

from __future__ import annotations

import json
import locale
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from qwqbot.conversation import Place, Turn, build_prompt
from qwqbot.digest.compose import DigestMessage, DigestRequest, transcript
from qwqbot.digest.schedule import format_local
from qwqbot.formatting import (
    MONTHS,
    WEEKDAYS,
    find_zone,
    format_clock,
    format_date,
    format_duration,
    format_span,
    format_tokens,
    month_name,
    require_aware,
    weekday_name,
    zone_or_utc,
)
from qwqbot.slack.home import home_view
from qwqbot.store.usage import WINDOWS, Totals
from tests.fakes.model_server import think_stream

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 30 November 2026, 09:00 in Berlin, and the next day.
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
END = START + timedelta(days=1)


# ------------------------------------------------------------------------------ names and dates

def test_names_are_english_in_calendar_order() -> None:
    monday = date(2026, 11, 30)
    assert [weekday_name(monday + timedelta(days=i)) for i in range(7)] == list(WEEKDAYS)
    assert [weekday_name(monday + timedelta(days=i), short=True) for i in range(7)] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert [month_name(date(2026, m, 1)) for m in range(1, 13)] == list(MONTHS)
    assert [month_name(date(2026, m, 1), short=True) for m in range(1, 13)] == [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@pytest.mark.parametrize(("options", "text"), [
    ({}, "Tuesday 1 December"),
    ({"short": True}, "Tue 1 Dec"),
    ({"year": True}, "Tuesday 1 December 2026"),
    ({"zero_pad": True}, "Tuesday 01 December"),
    ({"short": True, "year": True, "zero_pad": True}, "Tue 01 Dec 2026"),
])
def test_format_date(options: dict[str, bool], text: str) -> None:
    assert format_date(date(2026, 12, 1), **options) == text


def test_format_clock() -> None:
    assert format_clock(datetime(2026, 12, 1, 9, 5, 59)) == "09:05"
    assert format_clock(clock_time(23, 0)) == "23:00"


# ------------------------------------------------------------------------------ zones

@pytest.mark.parametrize("name", [None, "", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "America"])
def test_unknown_zones(name: str | None) -> None:
    assert find_zone(name) is None
    assert zone_or_utc(name) == (UTC, "UTC")


def test_known_zones() -> None:
    assert find_zone("Europe/Berlin") == BERLIN
    assert zone_or_utc("Asia/Kathmandu") == (ZoneInfo("Asia/Kathmandu"), "Asia/Kathmandu")


def test_require_aware() -> None:
    assert require_aware(START, "start") is START
    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        require_aware(datetime(2026, 11, 30), "start")


# ------------------------------------------------------------------------------ spans and durations

def test_format_span() -> None:
    assert format_span(START.timestamp(), END.timestamp(), "Europe/Berlin") == (
        "Mon 30 Nov 09:00 → Tue 01 Dec 09:00 (Europe/Berlin)")
    # An hour with DST: New York leaves it on 1 November 2026.
    ny_start = datetime(2026, 10, 31, 9, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert format_span(ny_start, ny_start + 2 * 86_400, "America/New_York") == (
        "Sat 31 Oct 09:00 → Mon 02 Nov 08:00 (America/New_York)")


def test_format_span_in_an_unknown_zone_shows_and_names_utc() -> None:
    assert format_span(START.timestamp(), END.timestamp(), "Mars/Olympus") == (
        "Mon 30 Nov 08:00 → Tue 01 Dec 08:00 (UTC)")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "<1 s"), (0.6, "1 s"), (59.4, "59 s"), (60, "1 min"), (125, "2 min 5 s"), (3720, "1 h 2 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ------------------------------------------------------------------------------ under a foreign locale

_GERMAN = {
    "a": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
    "A": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "b": ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
    "B": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember"),
}


def _installed(name: str) -> bool:
    saved = locale.setlocale(locale.LC_TIME)
    try:
        locale.setlocale(locale.LC_TIME, name)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_TIME, saved)
    return True


_REAL_LOCALES = [name for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "es_ES.UTF-8") if _installed(name)]


@pytest.fixture(params=["simulated de_DE", *_REAL_LOCALES])
def foreign_locale(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's day and month names in another language, for the length of one test."""
    if request.param == "simulated de_DE":
        real_strftime = time.strftime

        def german(fmt: str, t: Any = None) -> str:
            fields = time.localtime() if t is None else t

            def name(m: re.Match[str]) -> str:
                code = m[1]
                if code in "aA":
                    return _GERMAN[code][fields[6]]
                if code in "bB":
                    return _GERMAN[code][fields[1] - 1]
                return m[0]

            return real_strftime(re.sub(r"%(.)", name, fmt), fields)

        monkeypatch.setattr(time, "strftime", german)
        saved = None
    else:
        saved = locale.setlocale(locale.LC_TIME)
        locale.setlocale(locale.LC_TIME, request.param)
    try:
        # Guard: the names really are foreign now, or the test would prove nothing.
        assert f"{datetime(2026, 12, 1):%a %b}" != "Tue Dec"
        yield str(request.param)
    finally:
        if saved is not None:
            locale.setlocale(locale.LC_TIME, saved)


def test_formatting_is_english_under_a_foreign_locale(foreign_locale: str) -> None:
    assert format_span(START.timestamp(), END.timestamp(), "Europe/Berlin") == (
        "Mon 30 Nov 09:00 → Tue 01 Dec 09:00 (Europe/Berlin)")
    assert format_date(date(2026, 12, 1), year=True) == "Tuesday 1 December 2026"
    assert format_local(END, "Europe/Berlin") == "Tue 1 Dec at 09:00 (Europe/Berlin)"


def test_home_tab_fallback_dates_are_english_under_a_foreign_locale(foreign_locale: str) -> None:
    totals = Totals.empty()
    row = {"id": 1, "channel_id": "C1", "kind": "daily", "day": None, "hour": 9, "minute": 0,
           "tz": "Europe/Berlin", "last_status": None, "last_period_end": None,
           "next_run": datetime(2026, 12, 1, 9, tzinfo=BERLIN)}
    view = home_view(user_id="U1", is_admin=False, own={label: totals for label, _ in WINDOWS}, quota=None,
                     digests=[row])
    assert "|Tue 01 Dec 2026 09:00 CET>" in json.dumps(view)


def test_prompts_and_transcripts_are_english_under_a_foreign_locale(foreign_locale: str) -> None:
    prompt = build_prompt([Turn("Alice", "hi", False, "1.0")], names={}, bot_user_id=None, system_prompt="",
                          today=date(2026, 12, 1), place=Place("channel"), budget_tokens=10_000)
    assert "Today is Tuesday, 1 December 2026." in prompt.messages[0]["content"]
    monday = datetime(2026, 11, 30, 10, tzinfo=BERLIN).timestamp()
    request = DigestRequest(
        channel_name="general", period_start=START, period_end=END + timedelta(days=1), tz="Europe/Berlin",
        messages=[DigestMessage(f"{monday:.6f}", f"{monday:.6f}", "Alice", "plan"),
                  DigestMessage(f"{monday + 86_400:.6f}", f"{monday:.6f}", "Bob", "done")],
        names={}, bot_user_id=None, budget_tokens=10_000)
    [entry], _ = transcript(request)
    assert entry.splitlines()[0] == "— Monday 30 November —"
    assert entry.splitlines()[-1] == "  ↳ Bob (1 Dec, 10:00): done"


async def test_the_digest_header_is_english_under_a_foreign_locale(harness: Any, foreign_locale: str) -> None:
    """The header of a posted digest ("_Mon 30 Nov 09:00 → Tue 01 Dec 09:00 (Europe/Berlin) · …_")."""
    _, key = await harness.command("digest daily 09:00")  # Alice, whose Slack zone is Europe/Berlin
    await harness.slack.wait_for(lambda: harness.responses(key))
    await harness.post("C1", "U2", "We ship on Friday")
    harness.model.enqueue(think_stream("r", "**What was discussed**\n- shipping"))
    await harness.command("digest now")

    def digests() -> list[Any]:
        posts = harness.slack.calls_to("chat.postMessage")
        return [c for c in posts if "Digest of #general" in json.dumps(c.params)]

    await harness.slack.wait_for(digests, timeout=10)
    [post] = digests()
    [run] = harness.store.db.query("SELECT period_start, period_end FROM digest_runs")
    # Spelled out here independently of the code under test.
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

    def stamp(ts: float) -> str:
        t = datetime.fromtimestamp(ts, BERLIN)
        return f"{days[t.weekday()]} {t.day:02} {months[t.month - 1]} {t.hour:02}:{t.minute:02}"

    span = f"{stamp(run['period_start'])} → {stamp(run['period_end'])} (Europe/Berlin)"
    assert f"_{span} · 1 message_" in json.dumps(post.params, ensure_ascii=False)


@pytest.mark.parametrize(("n", "text"), [
    (0, "0"), (999, "999"), (1234, "1,234"), (999_999, "999,999"), (1_000_000, "1.0M"),
    (1_234_567, "1.2M"), (12_345_678, "12.3M"), (999_949_999, "999.9M"), (999_950_000, "1.0B"),
    (2_500_000_000, "2.5B"),
])
def test_format_tokens(n, text):
    assert format_tokens(n) == text
