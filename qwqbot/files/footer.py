"""The answer's footer lines about the files it was given. Pure.

Said once and briefly, in the bot's own words: which files the model read, which it read
only in part (and how much), which were left out for room, one line per file that could not
be read (with the reason), and one line for all images, audio and video together. Names are
the sharers' own text, so the caller passes ``name``, which makes one safe to show (the
Slack adapter escapes it and makes it inert: a file called ``<!channel>.txt`` pings no one).
"""

from __future__ import annotations

from collections.abc import Callable

from qwqbot.files.budget import FileReport

#: Characters of a file name shown in the footer.
NAME_CHARS = 80


def _names(names: list[str], name: Callable[[str], str]) -> str:
    return ", ".join(name(_short(n)) for n in names)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def footer_lines(report: FileReport, *, name: Callable[[str], str]) -> list[str]:
    """The footer's lines (Slack mrkdwn) for ``report``; none when no file was shared."""
    lines: list[str] = []
    parts: list[str] = []
    if report.read:
        parts.append(f"read {_names(report.read, name)}")
    if report.cut:
        parts.append("shortened to fit: " + "; ".join(
            f"{name(_short(n))} ({how})" for n, how in report.cut))
    if report.skipped:
        parts.append(f"left out, no room in the model's context: {_names(report.skipped, name)}")
    if parts:
        lines.append(":paperclip: Files: " + " · ".join(parts))
    lines.extend(f":warning: Couldn't read {name(_short(n))}: {why}." for n, why in report.unread)
    if report.unseen:
        lines.append(":frame_with_picture: The model reads text only, so it did not see "
                     f"{_names(report.unseen, name)}.")
    return lines
