"""Pure formatting of numbers, times and durations for people to read; never the process locale.

``strftime``'s ``%a``, ``%A``, ``%b`` and ``%B`` name days and months in the process's ``LC_TIME``
locale (https://docs.python.org/3/library/datetime.html#strftime-and-strptime-format-codes): a bot
started under ``de_DE.UTF-8`` would write "Di 01 Dez" into an English message. So every name here is
spelled out in English, and numbers come from the datetime's own fields. A zone this machine does
not know falls back to UTC, and the text then names UTC, so no time is shown against the wrong zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "find_zone",
    "format_clock",
    "format_date",
    "format_duration",
    "format_span",
    "format_tokens",
    "month_name",
    "require_aware",
    "weekday_name",
    "zone_or_utc",
]

#: English day names, Monday first (``date.weekday()`` order).
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: English month names, January first (``date.month - 1`` order).
MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                 "October", "November", "December")


def weekday_name(day: date, *, short: bool = False) -> str:
    """"Monday", or "Mon" when ``short``."""
    name = WEEKDAYS[day.weekday()]
    return name[:3] if short else name


def month_name(day: date, *, short: bool = False) -> str:
    """"November", or "Nov" when ``short``."""
    name = MONTHS[day.month - 1]
    return name[:3] if short else name


def format_date(day: date, *, short: bool = False, year: bool = False, zero_pad: bool = False) -> str:
    """"Monday 30 November"; ``short``: "Mon 30 Nov"; ``year``: "Monday 30 November 2026";
    ``zero_pad``: "Tuesday 01 December"."""
    number = f"{day.day:02}" if zero_pad else str(day.day)
    text = f"{weekday_name(day, short=short)} {number} {month_name(day, short=short)}"
    return f"{text} {day.year}" if year else text


def format_clock(moment: datetime | time) -> str:
    """"09:05": the 24-hour time of day."""
    return f"{moment.hour:02}:{moment.minute:02}"


def find_zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when ``name`` is empty or unknown on this machine."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a relative key ("../x", "/x", ""); OSError: a folder of zones ("America").
        return None


def zone_or_utc(name: str | None) -> tuple[tzinfo, str]:
    """The zone called ``name`` and that name, or UTC and "UTC" when :func:`find_zone` knows none."""
    zone = find_zone(name)
    if zone is None or not name:
        return UTC, "UTC"
    return zone, name


def require_aware(moment: datetime, name: str) -> datetime:
    """``moment`` itself; raises ``ValueError`` naming ``name`` when it has no UTC offset."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {moment!r}")
    return moment


def format_span(start: float, end: float, tz: str) -> str:
    """"Mon 30 Nov 09:00 → Tue 01 Dec 09:00 (Europe/Berlin)": Unix seconds on the clock of ``tz``
    (UTC, and so named, for a zone this machine does not know)."""
    zone, name = zone_or_utc(tz)
    first, last = datetime.fromtimestamp(start, zone), datetime.fromtimestamp(end, zone)
    return f"{_stamp(first)} → {_stamp(last)} ({name})"


def _stamp(moment: datetime) -> str:
    return f"{format_date(moment, short=True, zero_pad=True)} {format_clock(moment)}"


def format_duration(seconds: float) -> str:
    """``38 s``, ``2 min 5 s``, ``1 h 3 min``; under a second reads ``<1 s``."""
    total = round(seconds)
    if seconds < 1 and total < 1:
        return "<1 s"
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_tokens(n: int) -> str:
    """``1234`` → ``1,234``; from a million on, one decimal and a suffix: ``1_234_567`` → ``1.2M``."""
    if abs(n) < 1_000_000:
        return f"{n:,}"
    value, suffix = n / 1_000_000, "M"
    if abs(round(value, 1)) >= 1000:
        value, suffix = n / 1_000_000_000, "B"
    return f"{value:,.1f}{suffix}"
