"""Pure formatting of numbers, times and durations for people to read; never the process locale."""

from __future__ import annotations


def format_tokens(n: int) -> str:
    """``1234`` → ``1,234``; from a million on, one decimal and a suffix: ``1_234_567`` → ``1.2M``."""
    if abs(n) < 1_000_000:
        return f"{n:,}"
    value, suffix = n / 1_000_000, "M"
    if abs(round(value, 1)) >= 1000:
        value, suffix = n / 1_000_000_000, "B"
    return f"{value:,.1f}{suffix}"
