"""A text shortened to a number of tokens at a readable boundary. Pure.

Where a file is cut matters to the reader (the model): in the middle of a line, a log entry
or a CSV row reads as a broken record. So the cut goes at the last line end that keeps at
least ``LINE_SHARE`` of what fits; failing that (one enormous line: minified JSON), at the
last space; failing that, where the tokens run out.

Token counts are ``qwqbot.tokens`` estimates, whose units add up under concatenation: the
longest prefix that fits is found by bisection on the prefix length (the estimate of a
prefix never decreases as it grows).
"""

from __future__ import annotations

from qwqbot.tokens import UNITS_PER_TOKEN, token_units

#: A cut at a line end may give up at most this share of what would fit.
LINE_SHARE = 0.8
#: How far back (characters) a cut looks for a space when there is no line end to cut at.
SPACE_WINDOW = 200


def fitting_prefix(text: str, max_tokens: int) -> int:
    """The length of the longest prefix of ``text`` estimated at ``max_tokens`` or fewer."""
    limit = max(0, max_tokens) * UNITS_PER_TOKEN
    if token_units(text) <= limit:
        return len(text)
    low, high = 0, len(text)  # token_units(text[:low]) <= limit < token_units(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if token_units(text[:middle]) <= limit:
            low = middle
        else:
            high = middle
    return low


def cut_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """``text`` shortened to about ``max_tokens`` tokens at a line end (or a space), and
    whether anything was cut. The result never exceeds ``max_tokens``."""
    n = fitting_prefix(text, max_tokens)
    if n >= len(text):
        return text, False
    head = text[:n]
    line_end = head.rfind("\n")
    if line_end >= 0 and line_end >= n * LINE_SHARE:
        return head[:line_end].rstrip(), True
    space = head.rfind(" ", max(0, n - SPACE_WINDOW))
    if space > 0:
        return head[:space].rstrip(), True
    return head, True
