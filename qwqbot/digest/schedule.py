"""Digest schedules: parsing `/qwq digest daily|weekly ...` and the instants they fire.

Everything here is a pure function of its arguments: no I/O and no clock. Every "now" is a
parameter, and every datetime taken or returned is aware.

Which instants a schedule fires at
----------------------------------
A schedule names a wall-clock time (and, if weekly, a weekday) in a time zone. It fires once
on every matching local date, at that date's wall-clock time resolved with ``fold=0``:

* ordinary dates: exactly HH:MM local time;
* DST spring-forward, HH:MM falls in the gap (02:30 in Europe/Berlin on 2026-03-29): the
  time is read on the offset in force *before* the change, so it fires the length of the gap
  later on the new clock -- 03:30 CEST (01:30 UTC). The wall clock then reads 03:30, not
  02:30; those are the only fires whose local time differs from HH:MM;
* DST fall-back, HH:MM happens twice (01:30 in America/New_York on 2026-11-01): it fires
  once, at the first occurrence -- 01:30 EDT (05:30 UTC);
* a DST change at midnight (America/Santiago, 00:30 on 2026-09-06 does not exist): the
  date still gets its fire, at 01:30 -03, by the same gap rule.

A digest covers the period from the previous fire to this one, so across a DST change a
daily period is 23 or 25 hours of real time, and periods tile time with no gap or overlap.

What stock APScheduler 3.11 does, and why :func:`trigger` is a subclass
-------------------------------------------------------------------------
The stock ``CronTrigger`` agrees with the rules above on ordinary dates and in a gap that is
not at midnight (it also fires 02:30 Berlin at 03:30 CEST), but, as the scheduler chains it
(``get_next_fire_time(previous_fire, now)``):

* in a fall-back overlap it fires **twice** (01:30 EDT, then 01:30 EST an hour later);
* when the gap is at midnight it **skips the date** (Santiago 00:30: fires 09-05, then 09-07);
* asked without a previous fire (``add_job``, ``resume_job``, a restart) from inside a gap
  window, it skips the shifted fire (from 03:00 CEST on 2026-03-29 it answers 2026-03-30).

:func:`trigger` therefore returns :class:`DigestTrigger`, a ``CronTrigger`` whose
``get_next_fire_time`` runs the stock cron field matching on a DST-free (UTC) wall clock and
maps each matching wall-clock time to an instant by the rules above. The scheduler only ever
asks a trigger ``get_next_fire_time``, so the jobs it runs fire exactly at the instants that
:func:`next_fire`, :func:`latest_fire` and :func:`period_ending` compute -- they ask the same
trigger. tests/digest/test_schedule.py pins both the stock behaviour and ours.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from qwqbot.formatting import WEEKDAYS, find_zone, format_clock, format_date, require_aware, zone_or_utc

Kind = Literal["daily", "weekly"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The smallest step a datetime can take: "strictly after t" is "at or after t + _TICK".
_TICK: Final = timedelta(microseconds=1)
# How far back latest_fire starts looking. It must exceed the longest possible interval
# between fires: a day or a week plus the biggest offset change a zone has made (a whole day,
# when Samoa crossed the date line), so one fire always lies inside the window.
_LOOKBACK: Final[dict[Kind, timedelta]] = {"daily": timedelta(days=3), "weekly": timedelta(days=9)}
# Wall-clock time and real time can disagree by an offset change (at most a day, see above),
# so the wall-clock search starts this far before the wall-clock reading of the start instant.
_WALL_MARGIN: Final = timedelta(days=2)

_USAGE_TIME: Final = "use HH:MM, 24-hour, e.g. 09:00"
_EXAMPLE_DAILY: Final = "`daily 09:00` or `daily 09:00 Europe/Berlin`"
_EXAMPLE_WEEKLY: Final = "`weekly mon 09:00` or `weekly mon 09:00 Europe/Berlin`"


class ScheduleError(ValueError):
    """A schedule the user typed cannot be used; ``.problem`` says why, in one short sentence."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: Kind
    hour: int
    minute: int
    tz: str  # IANA name in its canonical case, or "UTC"
    day: int | None = None  # 0 = Monday; weekly only
    # True when no zone was typed and the user's Slack zone was unknown, so UTC was assumed and
    # the reply should say so. Not part of equality: the schedule fires the same either way.
    assumed_utc: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # Schedules are also rebuilt from stored rows, not only from parse_schedule; refuse
        # impossible ones here rather than failing later inside the scheduler.
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if not 0 <= self.hour <= 23 or not 0 <= self.minute <= 59:
            raise ValueError(f"no such time of day: {self.hour:02}:{self.minute:02}")
        if self.kind == "weekly" and (self.day is None or not 0 <= self.day <= 6):
            raise ValueError(f"a weekly schedule needs a day 0..6 (0 = Monday), not {self.day!r}")
        if self.kind == "daily" and self.day is not None:
            raise ValueError("a daily schedule has no day")
        if find_zone(self.tz) is None:
            raise ValueError(f"unknown time zone {self.tz!r}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)  # ZoneInfo caches instances, so this is cheap


# --- parsing -------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """`text` for an error message: backticks removed so the code span stays intact, and cut short
    so a pasted paragraph does not become the error."""
    cleaned = text.replace("`", "").strip()
    return f"`{cleaned[:40]}…`" if len(cleaned) > 40 else f"`{cleaned}`"


# re.ASCII: \d would otherwise accept other scripts' digits, e.g. "٠٩:٠٠".
_TIME_24 = re.compile(r"(\d{1,2}):(\d{2})", re.ASCII)
_TIME_12 = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?", re.ASCII | re.IGNORECASE)


def parse_time(text: str) -> tuple[int, int]:
    """"09:00", "9:05", "23:59" (24-hour), or "9am", "9:30pm", "12am" (= 00:00), "12pm" (= 12:00)."""
    stripped = text.strip()
    if match := _TIME_24.fullmatch(stripped):
        hour, minute = int(match[1]), int(match[2])
        if hour <= 23 and minute <= 59:
            return hour, minute
    elif match := _TIME_12.fullmatch(stripped):
        hour, minute = int(match[1]), int(match[2] or 0)
        if 1 <= hour <= 12 and minute <= 59:
            # 12am is midnight and 12pm is noon: the clock face says 12 where the day says 0.
            return hour % 12 + (12 if match[3].lower() == "p" else 0), minute
    raise ScheduleError(f"{_quote(text)} is not a time: {_USAGE_TIME}")


def _day_aliases() -> dict[str, int]:
    aliases: dict[str, int] = {}
    for number, (short, name) in enumerate(zip(DAYS, WEEKDAYS, strict=True)):
        full = name.lower()
        # "mondays" reads naturally in "weekly mondays 09:00" and still names one day.
        aliases.update({short: number, full: number, full + "s": number})
    aliases.update({"tues": 1, "thur": 3, "thurs": 3})
    return aliases


_DAY_ALIASES: Final = _day_aliases()


def parse_day(text: str) -> int:
    """mon..sun or monday..sunday, any case; 0 = Monday."""
    word = text.strip().lower()
    if word in _DAY_ALIASES:
        return _DAY_ALIASES[word]
    accepted = ", ".join(DAYS)
    if word in {"weekdays", "weekends", "daily", "everyday", "weekday", "weekend"}:
        # Several days would be several digests a week; say so instead of "not a day".
        raise ScheduleError(f"a weekly digest runs on one day: use one of {accepted}")
    raise ScheduleError(f"{_quote(text)} is not a day: use one of {accepted} (or the full name)")


@functools.cache
def _zone_names() -> dict[str, str]:
    # Scanning tzdata is slow (tens of ms), so do it once per process.
    return {name.lower(): name for name in zoneinfo.available_timezones()}


_UTC_WORDS: Final = frozenset({"utc", "z"})


def parse_zone(text: str) -> str:
    """An IANA zone name, matched case-insensitively and returned in canonical case; "UTC", "utc"
    and "Z" all give "UTC". Fixed offsets like "+02:00" are refused: they do not follow DST."""
    word = text.strip()
    if word.lower() in _UTC_WORDS:
        return "UTC"
    if name := _zone_names().get(word.lower()):
        return name
    raise ScheduleError(
        f"{_quote(text)} is not a time zone: use an IANA name like Europe/Berlin, or UTC"
    )


def _join_meridiem(words: list[str]) -> list[str]:
    """["9", "am"] -> ["9am"], so "daily 9 am" works like "daily 9am"."""
    joined: list[str] = []
    for word in words:
        if joined and word.lower().replace(".", "") in {"am", "pm"}:
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ScheduleError:
        return False
    return True


def parse_schedule(words: list[str], *, default_tz: str | None) -> Schedule:
    """The words after "digest": ``daily HH:MM [TZ]`` or ``weekly DAY HH:MM [TZ]``.

    ``default_tz`` is the asking user's Slack time zone, used when no zone is typed; None means
    Slack has none, so UTC is used and ``Schedule.assumed_utc`` is set for the reply to mention.
    """
    words = _join_meridiem([word for word in words if word.strip()])
    if not words:
        raise ScheduleError(f"missing the schedule: say {_EXAMPLE_DAILY}, or {_EXAMPLE_WEEKLY}")
    kind_word, rest = words[0].lower(), words[1:]
    day: int | None = None
    if kind_word == "daily":
        kind: Kind = "daily"
        if not rest:
            raise ScheduleError(f"missing the time: e.g. {_EXAMPLE_DAILY}")
        if len(rest) > 2:
            raise ScheduleError(f"too many words: a daily digest takes a time and a time zone, "
                                f"e.g. {_EXAMPLE_DAILY}")
        time_word, zone_word = rest[0], (rest[1] if len(rest) == 2 else None)
    elif kind_word == "weekly":
        kind = "weekly"
        if not rest:
            raise ScheduleError(f"missing the day and time: e.g. {_EXAMPLE_WEEKLY}")
        if len(rest) == 1:
            if _parses(parse_day, rest[0]):
                raise ScheduleError(f"missing the time: e.g. {_EXAMPLE_WEEKLY}")
            if _parses(parse_time, rest[0]):
                raise ScheduleError(f"missing the day: e.g. {_EXAMPLE_WEEKLY}")
            parse_day(rest[0])  # raises, naming the word that is neither
        if len(rest) > 3:
            raise ScheduleError(f"too many words: a weekly digest takes a day, a time and a time "
                                f"zone, e.g. {_EXAMPLE_WEEKLY}")
        day_word, time_word = rest[0], rest[1]
        # "weekly 09:00 mon" is unambiguous, so take it rather than scold.
        if not _parses(parse_day, day_word) and _parses(parse_day, time_word):
            day_word, time_word = time_word, day_word
        day = parse_day(day_word)
        zone_word = rest[2] if len(rest) == 3 else None
    else:
        raise ScheduleError(f"{_quote(words[0])} is not a schedule: use daily or weekly")
    hour, minute = parse_time(time_word)

    if zone_word is not None:
        return Schedule(kind, hour, minute, parse_zone(zone_word), day)
    if default_tz is None:
        return Schedule(kind, hour, minute, "UTC", day, assumed_utc=True)
    try:
        tz = parse_zone(default_tz)
    except ScheduleError:
        # Not the user's typo, so not their usage line's fault: tell them how to get round it.
        raise ScheduleError(
            f"your Slack time zone {_quote(default_tz)} is not one I know: add a time zone, "
            f"e.g. {_EXAMPLE_DAILY if kind == 'daily' else _EXAMPLE_WEEKLY}"
        ) from None
    return Schedule(kind, hour, minute, tz, day)


# --- firing --------------------------------------------------------------------------------------


def _in_zone(moment: datetime, zone: tzinfo) -> datetime:
    # Through UTC on purpose: astimezone() to the datetime's own tzinfo is a no-op, which would
    # keep a non-existent wall time such as 02:30 on a spring-forward day as it is.
    return moment.astimezone(UTC).astimezone(zone)


class DigestTrigger(CronTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """A CronTrigger that fires once per matching local date, DST or not (module docstring).

    It keeps CronTrigger's fields, state (so it pickles into persistent job stores like the
    stock one), start/end dates and jitter; only the mapping of wall-clock times to instants
    changes.
    """

    __slots__ = ()

    def _wall_clock(self) -> CronTrigger:
        # The same fields evaluated in UTC, which has no DST: its fire times, read as naive wall
        # clock times, are exactly the wall-clock times this schedule matches.
        wall = CronTrigger.__new__(CronTrigger)
        wall.__setstate__({"version": 2, "timezone": UTC, "start_date": None, "end_date": None,
                           "fields": self.fields, "jitter": None})
        return wall

    def first_fire_at_or_after(self, start: datetime) -> datetime:
        """The earliest fire instant >= ``start``, in the trigger's zone."""
        zone: tzinfo = self.timezone
        start_utc = start.astimezone(UTC)
        wall = self._wall_clock()
        # fold=0 too: a start inside the repeated hour reads fold=1, which the UTC wall clock
        # would otherwise carry into its answers.
        probe = _in_zone(start_utc, zone).replace(tzinfo=UTC, fold=0) - _WALL_MARGIN
        while True:
            wall_fire: datetime = wall.get_next_fire_time(None, probe)
            # fold=0 picks the first of a repeated time and, for a time in a gap, the offset
            # in force before the change; _in_zone then shows it on the clock that applies.
            fire = _in_zone(wall_fire.replace(tzinfo=zone, fold=0), zone)
            if fire >= start_utc:
                return fire
            probe = wall_fire + _TICK

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # Where to start looking is computed exactly as the stock CronTrigger does, so the
        # scheduler's catch-up (misfire/coalesce) logic sees the same semantics.
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(UTC)
            start = min(now.astimezone(UTC), previous + _TICK)
            # Both sides in UTC: Python says an ambiguous or non-existent local time is never
            # equal to a datetime in another zone, even at the same instant.
            if start == previous:
                start += _TICK
        elif self.start_date is not None:
            start = max(now.astimezone(UTC), self.start_date.astimezone(UTC))
        else:
            start = now
        fire = self.first_fire_at_or_after(start)
        if self.end_date is not None and fire > self.end_date:
            return None
        fire = self._apply_jitter(fire, self.jitter, now)  # returns it unchanged without jitter
        assert isinstance(fire, datetime)
        return min(fire, self.end_date) if self.end_date is not None else fire


def _trigger(schedule: Schedule) -> DigestTrigger:
    return DigestTrigger(
        hour=schedule.hour,
        minute=schedule.minute,
        second=0,
        # By name: APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0.
        day_of_week=DAYS[schedule.day] if schedule.day is not None else None,
        timezone=schedule.zone,
    )


def trigger(schedule: Schedule) -> CronTrigger:
    """The trigger to give ``AsyncIOScheduler.add_job``: a :class:`DigestTrigger` in the schedule's
    zone, firing at exactly the instants :func:`next_fire` returns."""
    return _trigger(schedule)


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first fire strictly after ``after``, in the schedule's zone."""
    require_aware(after, "after")
    # +1µs in UTC, not on the wall clock: wall-clock arithmetic is wrong across a fold.
    return _trigger(schedule).first_fire_at_or_after(after.astimezone(UTC) + _TICK)


def latest_fire(schedule: Schedule, at_or_before: datetime) -> datetime:
    """The most recent fire at or before ``at_or_before``, in the schedule's zone."""
    require_aware(at_or_before, "at_or_before")
    at = at_or_before.astimezone(UTC)
    fire = next_fire(schedule, at - _LOOKBACK[schedule.kind])
    if fire > at:  # cannot happen: _LOOKBACK is longer than any interval between fires
        raise RuntimeError(f"no fire of {describe(schedule)} in the {_LOOKBACK[schedule.kind]} before {at}")
    while (following := next_fire(schedule, fire)) <= at:
        fire = following
    return fire


def period_ending(schedule: Schedule, fire: datetime) -> tuple[datetime, datetime]:
    """(previous fire, ``fire``): the period a digest sent at ``fire`` covers, both in the
    schedule's zone. ``fire`` must be one of the schedule's fire times: given any other instant
    this raises ValueError rather than invent a period; use ``latest_fire(schedule, now)``.

    Measure the period in UTC (``end.astimezone(UTC) - start.astimezone(UTC)``): Python
    subtracts two datetimes of the same zone on the wall clock, which is off by the DST change.
    """
    require_aware(fire, "fire")
    # Compared in UTC: an ambiguous local time never equals a datetime in another zone.
    if latest_fire(schedule, fire).astimezone(UTC) != fire.astimezone(UTC):
        raise ValueError(f"{fire.isoformat()} is not a time the schedule fires ({describe(schedule)})")
    return latest_fire(schedule, fire.astimezone(UTC) - _TICK), _in_zone(fire, schedule.zone)


# --- wording -------------------------------------------------------------------------------------


def describe(schedule: Schedule) -> str:
    """"every day at 09:00 (Europe/Berlin)", "every Monday at 09:30 (UTC)"."""
    when = "day" if schedule.day is None else WEEKDAYS[schedule.day]
    return f"every {when} at {schedule.hour:02}:{schedule.minute:02} ({schedule.tz})"


def format_local(moment: datetime, tz: str | None) -> str:
    """"Mon 30 Nov at 09:00 (Europe/Berlin)": ``moment`` on the clock of ``tz`` (a Slack user's
    zone). None, or a zone this machine does not know, shows UTC and says so."""
    require_aware(moment, "moment")
    zone, name = zone_or_utc(tz)
    local = _in_zone(moment, zone)
    return f"{format_date(local, short=True)} at {format_clock(local)} ({name})"


def period_key(schedule_id: int, fire: datetime) -> str:
    """"7:2026-11-30T08:00:00Z": the same for every call about the same period, whatever zone
    ``fire`` is expressed in, so it can guard against sending one period's digest twice."""
    require_aware(fire, "fire")
    return f"{schedule_id}:{fire.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
