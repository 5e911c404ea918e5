"""Model Markdown -> Slack mrkdwn, and mrkdwn -> Slack-sized pieces. Pure functions, no Slack client.

Models write CommonMark/GFM; Slack's mrkdwn is a different, smaller language (``*bold*``, ``_italic_``,
``~strike~``, ``<url|text>``, no headings/lists/tables, and only ``&``, ``<``, ``>`` escaped). Sending
Markdown raw is a common complaint about LLM bots in Slack (e.g. ChatGPT-in-Slack's issue tracker), so
every mrkdwn surface (the reasoning attachment, plain-text fallbacks) goes through :func:`to_mrkdwn`,
which walks markdown-it-py's syntax tree rather than patching raw text with
regexes: the parser already knows which ``*`` is emphasis and which is a literal or inside code.

:func:`split_message` then cuts the result into pieces that fit Slack's per-block limits (section text
<= 3,000 characters) without ever leaving a ``` fence, a ``<...>`` token or an ``&amp;`` entity half open.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.tree import SyntaxTreeNode

from qwqbot.slacktext import escape

__all__ = ["HR_LINE", "ZWSP", "escape_text", "head_cut", "split_message", "tail_cut", "to_mrkdwn"]

#: Zero-width space. Slack only honours ``*``/``_``/``~`` at word boundaries, so ``**bold**ly`` rendered as
#: ``*bold*ly`` shows the asterisks; ``*bold*\u200bly`` renders bold and looks the same.
ZWSP = "\u200b"
#: Slack has no horizontal rule; a line of box-drawing characters reads as one.
HR_LINE = "─" * 10
#: Bullet per nesting level (Slack has no list syntax, so lists are drawn with characters).
BULLETS = ("•", "◦", "▪")
#: Indentation per list nesting level.
LIST_INDENT = "    "
FENCE = "```"
_BACKTICK_RUN_RE = re.compile(r"`{3,}")


def _inert_fences(text: str) -> str:
    """Make any run of 3+ backticks (code containing ```, or one in prose) unable to open a Slack fence."""
    return _BACKTICK_RUN_RE.sub(lambda run: ZWSP.join(run.group(0)), text)


# ---------------------------------------------------------------------------------------------------------
# Escaping and Slack's own tokens
# ---------------------------------------------------------------------------------------------------------

#: Slack control sequences a model may echo from the conversation; conversion keeps them whole: <@U123ABC>,
#: <#C123|general>, <!here>, <!subteam^S123|@team>, <!date^1392734382^{date}|Feb 18>,
#: <https://example.com|text>, <mailto:a@b.c|mail>. Which of them may then reach Slack as markup is
#: decided after conversion, by ``qwqbot.slack.inert``.
SLACK_TOKEN_RE = re.compile(
    r"<(?:"
    r"[@#][A-Z0-9]+(?:\|[^<>\n]*)?"
    r"|![a-z]+(?:\^[^<>|\n]*)*(?:\|[^<>\n]*)?"
    r"|[a-zA-Z][a-zA-Z0-9+.\-]{1,31}:[^<>|\s]+\|[^<>\n]+"
    r")>"
)
#: LLMs put <br> in table cells and paragraphs although they write Markdown; treat it as a line break.
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


def escape_text(text: str) -> str:
    """Escape plain text for mrkdwn, leaving Slack's own tokens (mentions, ``<url|text>``) working."""
    parts: list[str] = []
    position = 0
    for match in SLACK_TOKEN_RE.finditer(text):
        parts.extend((escape(text[position : match.start()]), match.group(0)))
        position = match.end()
    parts.append(escape(text[position:]))
    return "".join(parts)


def _slack_inline_rule(state: StateInline, silent: bool) -> bool:
    """markdown-it inline rule: keep Slack tokens whole (before autolink/emphasis can take them apart)."""
    if state.src[state.pos] != "<":
        return False
    token_match = SLACK_TOKEN_RE.match(state.src, state.pos, state.posMax)
    if token_match is not None:
        if not silent:
            state.push("slack_token", "", 0).content = token_match.group(0)
        state.pos = token_match.end()
        return True
    br_match = _BR_RE.match(state.src, state.pos, state.posMax)
    if br_match is not None:
        if not silent:
            state.push("hardbreak", "br", 0)
        state.pos = br_match.end()
        return True
    return False


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # html=False: raw HTML from a model is shown as text (escaped), and "<!here>" is never taken for an
    # HTML declaration that would swallow a whole paragraph as an html_block.
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.inline.ruler.before("autolink", "slack_token", _slack_inline_rule)
    return md


# ---------------------------------------------------------------------------------------------------------
# Inline rendering
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    """An emphasis marker, kept symbolic until the line is joined so that word-boundary fixes can see it."""

    char: str
    opening: bool


_Seg = str | _Mark  # str segments are finished mrkdwn (already escaped); "\n" is a line break
_MARK_CHARS = {"strong": "*", "em": "_", "s": "~"}
#: Slack inline code cannot contain a backtick; a look-alike keeps the code readable.
_BACKTICK_LOOKALIKE = "ˋ"


def _inline(node: SyntaxTreeNode, active: frozenset[str]) -> list[_Seg]:
    segs: list[_Seg] = []
    for child in node.children:
        segs.extend(_inline_node(child, active))
    return segs


def _inline_node(node: SyntaxTreeNode, active: frozenset[str]) -> list[_Seg]:
    kind = node.type
    if kind == "text":
        # A literal ``` in prose would open a Slack code block; a zero-width space keeps it inert.
        return [_inert_fences(escape(node.content))]
    if kind in ("softbreak", "hardbreak"):
        return ["\n"]
    if kind == "code_inline":
        return [_code_span(node.content)]
    if kind == "slack_token":
        return [node.content]
    if kind in _MARK_CHARS:
        char = _MARK_CHARS[kind]
        inner = _inline(node, active | {char})
        # Slack cannot nest a marker inside itself (*a *b* c*): the outer one already covers it.
        return inner if char in active else _wrap(inner, char)
    if kind == "link":
        return [_link(str(node.attrs.get("href", "")), _plain(node), auto=node.info == "auto")]
    if kind == "image":
        return [_link(str(node.attrs.get("src", "")), _plain(node), auto=False)]
    return [escape(node.content), *_inline(node, active)]


def _code_span(content: str) -> str:
    if not content.strip():
        return escape(content)
    return "`" + escape(content.replace("`", _BACKTICK_LOOKALIKE)) + "`"


def _link(url: str, label: str, *, auto: bool) -> str:
    # Formatting inside <url|label> is unreliable in Slack, so the label is plain text. markdown-it has
    # already percent-encoded "|", "<", ">" and spaces in the URL; "&" still needs Slack's escape.
    target = escape(url)
    label = " ".join(label.split())
    if auto or not label or label == url:
        if auto and url.startswith("mailto:") and label:
            return f"<{target}|{escape(label)}>"
        return f"<{target}>"
    return f"<{target}|{escape(label)}>"


def _plain(node: SyntaxTreeNode) -> str:
    """Text of an inline subtree with all formatting dropped (table cells, link labels, image alt)."""
    parts: list[str] = []
    for child in node.children:
        if child.type in ("text", "code_inline", "slack_token"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        else:
            parts.append(_plain(child))
    return "".join(parts)


def _split_lines(segs: list[_Seg]) -> list[list[_Seg]]:
    lines: list[list[_Seg]] = [[]]
    for seg in segs:
        if seg == "\n":
            lines.append([])
        else:
            lines[-1].append(seg)
    return lines


def _wrap(segs: list[_Seg], char: str) -> list[_Seg]:
    """Put ``char`` markers around each line of ``segs``.

    Slack formatting never spans a line break, so a span that contains one is closed and reopened per
    line. Markers must touch non-space text in Slack (``* x*`` is literal), so edge whitespace moves
    outside, and a line with no visible text gets no markers at all.
    """
    wrapped: list[_Seg] = []
    for index, line in enumerate(_split_lines(segs)):
        if index:
            wrapped.append("\n")
        text = "".join(s for s in line if isinstance(s, str))
        if not text.strip():
            wrapped.extend(line)
            continue
        lead: list[_Seg] = []
        trail: list[_Seg] = []
        core = list(line)
        if isinstance(core[0], str) and core[0] != core[0].lstrip():
            stripped = core[0].lstrip()
            lead.append(core[0][: len(core[0]) - len(stripped)])
            core[0] = stripped
        if isinstance(core[-1], str) and core[-1] != core[-1].rstrip():
            stripped = core[-1].rstrip()
            trail.append(core[-1][len(stripped) :])
            core[-1] = stripped
        wrapped.extend([*lead, _Mark(char, True), *core, _Mark(char, False), *trail])
    return wrapped


def _is_word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


def _first_char(segs: list[_Seg], start: int) -> str | _Mark | None:
    for seg in segs[start:]:
        if isinstance(seg, _Mark):
            return seg
        if seg:
            return seg[0]
    return None


def _join_segments(segs: list[_Seg]) -> str:
    """Resolve markers to characters, adding a zero-width space where a marker is glued to a word.

    Slack only recognises ``*``/``_``/``~`` at word boundaries, so ``x*bold*`` or ``*bold*y`` would show
    the asterisks; ``x<ZWSP>*bold*<ZWSP>y`` renders as intended.
    """
    out: list[str] = []
    previous = ""  # last text character; "" right after a marker (markers settle their own boundary)
    for index, seg in enumerate(segs):
        if isinstance(seg, str):
            if seg:  # markdown-it emits empty text tokens
                out.append(seg)
                previous = seg[-1]
            continue
        if seg.opening and _is_word_char(previous):
            out.append(ZWSP)
        out.append(seg.char)
        previous = ""
        following = _first_char(segs, index + 1)
        if not seg.opening and (
            (isinstance(following, _Mark) and following.opening)
            or (isinstance(following, str) and _is_word_char(following))
        ):
            out.append(ZWSP)
    return "".join(out)


def _inline_text(node: SyntaxTreeNode, *, bold: bool = False) -> str:
    segs = _inline(node, frozenset({"*"}) if bold else frozenset())
    return _join_segments(_wrap(segs, "*") if bold else segs)


# ---------------------------------------------------------------------------------------------------------
# Block rendering
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    text: str
    #: Inside a ``` block. Slack only recognises a fence at the start of a line and code must stay
    #: verbatim, so raw lines are never indented or prefixed with "> ".
    raw: bool = False


_BlockKind = Literal["text", "list", "code"]


@dataclass(frozen=True)
class _Block:
    kind: _BlockKind
    lines: list[_Line]


def _blocks(nodes: list[SyntaxTreeNode], depth: int) -> list[_Block]:
    blocks: list[_Block] = []
    for node in nodes:
        block = _block(node, depth)
        if block is not None and any(line.raw or line.text.strip() for line in block.lines):
            blocks.append(block)
    return blocks


def _text_block(text: str) -> _Block:
    return _Block("text", [_Line(line) for line in text.split("\n")])


def _block(node: SyntaxTreeNode, depth: int) -> _Block | None:
    kind = node.type
    if kind == "paragraph":
        return _text_block(_inline_text(node.children[0]))
    if kind == "heading":
        # Slack has no headings; a bold line is the convention.
        return _text_block(_inline_text(node.children[0], bold=True))
    if kind in ("bullet_list", "ordered_list"):
        return _Block("list", _list_lines(node, depth))
    if kind == "blockquote":
        return _Block("text", _quote_lines(node))
    if kind in ("fence", "code_block"):
        return _Block("code", _code_lines(node.content))
    if kind == "table":
        return _Block("code", _table_lines(node))
    if kind == "hr":
        return _text_block(HR_LINE)
    if kind == "inline":
        return _text_block(_inline_text(node))
    if node.content:
        return _text_block(escape(node.content))
    return None


def _join_blocks(blocks: list[_Block], separator: list[_Line]) -> list[_Line]:
    lines: list[_Line] = []
    for index, block in enumerate(blocks):
        if index:
            lines.extend(separator)
        lines.extend(block.lines)
    return lines


def _code_lines(content: str) -> list[_Line]:
    # Slack ignores a language tag and would show it as the first code line, so fences are bare. A ```
    # inside the code would end Slack's block early; a zero-width space keeps it visible but inert.
    body = _inert_fences(escape(content.rstrip("\n")))
    if not body.strip():
        return []
    return [
        _Line(FENCE, raw=True),
        *(_Line(line, raw=True) for line in body.split("\n")),
        _Line(FENCE, raw=True),
    ]


def _list_lines(node: SyntaxTreeNode, depth: int) -> list[_Line]:
    lines: list[_Line] = []
    bullet = BULLETS[min(depth, len(BULLETS) - 1)]
    # Number like a Markdown renderer does (start, start+1, ...): models often write "1." on every item.
    first = int(node.attrs.get("start", 1))
    for index, item in enumerate(node.children):
        marker = f"{first + index}." if node.type == "ordered_list" else bullet
        lines.extend(_item_lines(item, marker, depth))
    return lines


def _item_lines(item: SyntaxTreeNode, marker: str, depth: int) -> list[_Line]:
    hanging = " " * (len(marker) + 1)
    blocks = _blocks(item.children, depth + 1)
    lines: list[_Line] = []
    for block in blocks:
        # Nested lists indent by a fixed step (4 spaces per level); the item's own paragraphs continue
        # under the text, after the marker.
        indent = LIST_INDENT if block.kind == "list" else hanging
        lines.extend(line if line.raw else _Line(indent + line.text) for line in block.lines)
    if blocks and blocks[0].kind == "text":
        return [_Line(f"{marker} {lines[0].text[len(hanging) :]}"), *lines[1:]]
    return [_Line(marker), *lines]


def _quote_lines(node: SyntaxTreeNode) -> list[_Line]:
    blocks = _blocks(node.children, 0)
    lines: list[_Line] = []
    for index, block in enumerate(blocks):
        # Code and tables cannot sit inside a Slack quote (the fence must start the line), so they
        # interrupt it; a bare ">" separator next to them would only add an empty quote line.
        if index and block.kind != "code" and blocks[index - 1].kind != "code":
            lines.append(_Line(">"))
        lines.extend(
            line if line.raw else _Line(f"> {line.text}" if line.text else ">") for line in block.lines
        )
    return lines


def _display_width(text: str) -> int:
    """Columns a monospace font uses for ``text`` (CJK wide = 2, combining marks = 0)."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char == ZWSP:
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _display_width(text)
    if "right" in align:
        return " " * gap + text
    if "center" in align:
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _table_lines(node: SyntaxTreeNode) -> list[_Line]:
    # Slack renders no tables; a monospace block with padded columns is the closest readable form, and
    # formatting markers inside it would show literally, so cells are plain text.
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row in section.children:
            rows.append(
                [" ".join(_plain(cell.children[0]).split()) if cell.children else "" for cell in row.children]
            )
            if section.type == "thead":
                aligns = [str(cell.attrs.get("style", "")) for cell in row.children]
    if not rows:
        return []
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    aligns += [""] * (columns - len(aligns))
    widths = [max(_display_width(row[col]) for row in rows) for col in range(columns)]
    rendered = [
        " | ".join(_pad(cell, widths[c], aligns[c]) for c, cell in enumerate(row)).rstrip() for row in rows
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return [
        _Line(FENCE, raw=True),
        *(_Line(escape(line), raw=True) for line in rendered),
        _Line(FENCE, raw=True),
    ]


def to_mrkdwn(markdown: str) -> str:
    """Convert CommonMark/GFM as models write it into Slack mrkdwn (see the module docstring)."""
    root = SyntaxTreeNode(_parser().parse(markdown))
    lines = _join_blocks(_blocks(root.children, 0), [_Line("")])
    return "\n".join(line.text if line.raw else line.text.rstrip() for line in lines)


# ---------------------------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------------------------

_REOPEN = FENCE + "\n"
_RECLOSE = "\n" + FENCE
#: Spans a cut must never fall inside (unless one alone exceeds the limit): Slack tokens (<@U1>,
#: <url|text>) and entities (&amp;), which Slack would show raw if cut.
_TOKEN_RE = re.compile(r"<[^<>\n]{1,1000}>|&(?:[a-zA-Z]{1,10}|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
#: Inline code spans: better kept whole, but cut before any token is.
_CODE_SPAN_RE = re.compile(r"(?<!`)`[^`\n]{1,1000}`(?!`)")
#: Smallest limit that always leaves room for a reopened fence, one character and a closing fence.
MIN_LIMIT = 16


@dataclass(frozen=True)
class _Fence:
    """A ``` region: ``open_at`` is the opening marker, code runs from ``body_start`` to ``body_end``."""

    open_at: int
    body_end: int
    closed: bool

    @property
    def body_start(self) -> int:
        return self.open_at + len(FENCE)

    @property
    def close_end(self) -> int:
        return self.body_end + len(FENCE) if self.closed else self.body_end


class _Spans:
    """Non-overlapping spans of one kind in a text, with an O(log n) "is this cut inside one" test."""

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._spans = [(m.start(), m.end()) for m in pattern.finditer(text)]
        self._starts = [start for start, _ in self._spans]

    def cuts(self, pos: int) -> bool:
        index = bisect.bisect_left(self._starts, pos) - 1
        return index >= 0 and pos < self._spans[index][1]


class _Layout:
    """Where cuts may fall in a mrkdwn text: fenced regions and protected spans, indexed for bisect."""

    def __init__(self, text: str) -> None:
        self.text = text
        markers = [m.start() for m in re.finditer(re.escape(FENCE), text)]
        self.fences: list[_Fence] = []
        for index in range(0, len(markers), 2):
            if index + 1 < len(markers):
                self.fences.append(_Fence(markers[index], markers[index + 1], closed=True))
            else:  # an unclosed fence runs to the end; the last piece gets a closing fence
                self.fences.append(_Fence(markers[index], len(text), closed=False))
        self._fence_starts = [fence.open_at for fence in self.fences]
        self.tokens = _Spans(_TOKEN_RE, text)
        self.code_spans = _Spans(_CODE_SPAN_RE, text)

    @property
    def unclosed(self) -> bool:
        return bool(self.fences) and not self.fences[-1].closed

    def fence_at(self, pos: int) -> _Fence | None:
        """The fence whose span (opening marker to closing marker) strictly contains ``pos``."""
        index = bisect.bisect_left(self._fence_starts, pos) - 1
        if index >= 0 and pos < self.fences[index].close_end:
            return self.fences[index]
        return None

    def in_code(self, pos: int) -> bool:
        fence = self.fence_at(pos)
        return fence is not None and fence.body_start < pos <= fence.body_end

    def outside_markers(self, pos: int) -> bool:
        """``pos`` is not inside a fence marker nor between a marker and its (empty) code."""
        fence = self.fence_at(pos)
        return fence is None or fence.body_start < pos < fence.body_end

    def code_cut_ok(self, pos: int, start: int) -> bool:
        """A cut inside code must leave code on both sides: never an empty ``` block."""
        fence = self.fence_at(pos)
        if fence is None:
            return True
        if not self.outside_markers(pos):
            return False
        before = self.text[max(start, fence.body_start) : pos]
        return bool(before.strip()) and bool(self.text[pos : fence.body_end].strip())


@dataclass(frozen=True)
class _Cut:
    piece: str
    next_start: int


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _resume_at(layout: _Layout, pos: int) -> int:
    """Where the next piece starts after a cut at ``pos``."""
    if layout.in_code(pos):
        # Drop only the line break at the cut: leading spaces of the next code line are indentation.
        return pos + 1 if layout.text[pos] == "\n" else pos
    return _skip_space(layout.text, pos)


def _make_cut(layout: _Layout, start: int, pos: int) -> _Cut:
    """The piece ``text[start:pos]``, with fences closed/reopened when it starts or ends inside code."""
    prefix = _REOPEN if layout.in_code(start) else ""
    core = layout.text[start:pos]
    # Cut inside a code block: close it here and reopen it at the start of the next piece.
    piece = prefix + core + _RECLOSE if layout.in_code(pos) else prefix + core.rstrip()
    return _Cut(piece, _resume_at(layout, pos))


_Level = Literal["paragraph", "line", "word", "char"]
_LEVELS: tuple[_Level, ...] = ("paragraph", "line", "word", "char")
_LEVEL_PATTERN = {
    "paragraph": re.compile(r"\n[ \t]*\n"),
    "line": re.compile(r"\n"),
    "word": re.compile(r"[ \t]"),
}


def _positions(text: str, lo: int, hi: int, level: _Level) -> list[int]:
    """Candidate cut positions of one kind within [lo, hi], in text order."""
    if level == "char":
        return list(range(lo, hi + 1))
    return [
        m.start() for m in _LEVEL_PATTERN[level].finditer(text, lo, min(hi + 2, len(text))) if m.start() <= hi
    ]


#: Search order for a cut: every kind of boundary keeping all spans whole, then word and character cuts
#: that may split an inline code span (never a token).
_PASSES: tuple[tuple[_Level, bool], ...] = (
    *((level, True) for level in _LEVELS),
    ("word", False),
    ("char", False),
)


def _acceptable(layout: _Layout, start: int, pos: int, level: _Level, keep_code_spans: bool) -> bool:
    if level == "paragraph" and layout.in_code(pos):
        return False  # a blank line inside code is only a line boundary
    if level in ("word", "char") and (
        layout.tokens.cuts(pos) or (keep_code_spans and layout.code_spans.cuts(pos))
    ):
        return False
    return layout.code_cut_ok(pos, start)


def _next_cut(layout: _Layout, start: int, limit: int) -> _Cut:
    """The longest piece from ``start`` that fits ``limit``, cut at the best boundary available."""
    hi = min(start + limit, len(layout.text) - 1)
    for level, keep_code_spans in _PASSES:
        for pos in reversed(_positions(layout.text, start + 1, hi, level)):
            if _acceptable(layout, start, pos, level, keep_code_spans):
                cut = _make_cut(layout, start, pos)
                if len(cut.piece) <= limit:
                    return cut
    # Only reachable when a single token is longer than the limit: split it after all.
    for pos in range(hi, start, -1):
        if layout.outside_markers(pos):
            cut = _make_cut(layout, start, pos)
            if len(cut.piece) <= limit and cut.next_start > start:
                return cut
    raise AssertionError("unreachable: limit >= MIN_LIMIT always leaves a cut")  # pragma: no cover


def _final_piece(layout: _Layout, start: int) -> str:
    prefix = _REOPEN if layout.in_code(start) else ""
    suffix = _RECLOSE if layout.unclosed else ""
    return prefix + layout.text[start:].rstrip() + suffix


def split_message(mrkdwn: str, limit: int = 3000) -> list[str]:
    """Split mrkdwn into consecutive pieces of at most ``limit`` characters (Slack: section text <= 3,000).

    Cuts go at blank lines first, then line breaks, then spaces, and only then between any two characters.
    A cut never falls inside a Slack token (``<...>``), an entity (``&amp;``) or an inline code span. A ```
    block longer than a piece is closed at the end of one piece and reopened at the start of the next, so
    every piece has balanced fences (an unclosed fence in the input is closed in the last piece).
    Whitespace at the cuts is dropped; nothing else is.
    """
    _check_limit(limit)
    layout = _Layout(mrkdwn)
    pieces: list[str] = []
    start = 0
    while start < len(mrkdwn):
        piece, start = _head_cut(layout, limit, start)
        if piece.strip():
            pieces.append(piece)
    return pieces


def head_cut(mrkdwn: str, limit: int) -> tuple[str, int]:
    """The first piece :func:`split_message` would make, and the index in ``mrkdwn`` where the rest begins."""
    _check_limit(limit)
    return _head_cut(_Layout(mrkdwn), limit, 0)


def _check_limit(limit: int) -> None:
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, got {limit}")


def _head_cut(layout: _Layout, limit: int, start: int) -> tuple[str, int]:
    text = layout.text
    if not layout.in_code(start):
        start = _skip_space(text, start)
    if start >= len(text):
        return "", len(text)
    final = _final_piece(layout, start)
    if len(final) <= limit:
        return final, len(text)
    cut = _next_cut(layout, start, limit)
    return cut.piece, cut.next_start


def tail_cut(mrkdwn: str, budget: int, *, not_before: int = 0) -> tuple[str, int]:
    """The longest ending of ``mrkdwn`` that fits ``budget``, starting at the best boundary.

    Returns ``(piece, start)``: ``piece`` has balanced fences (a fence is reopened when the ending starts
    inside code) and ``start`` is where it begins in ``mrkdwn``. Used to keep the end of long reasoning.
    """
    layout = _Layout(mrkdwn)
    text = layout.text
    start = not_before if layout.in_code(not_before) else _skip_space(text, not_before)
    if start >= len(text):
        return "", len(text)
    whole = _final_piece(layout, start)
    if len(whole) <= budget:
        return whole, start
    lo = max(not_before, len(text) - budget, 0)
    for level, keep_code_spans in _PASSES:
        for pos in _positions(text, lo, len(text) - 1, level):
            if not _acceptable(layout, not_before, pos, level, keep_code_spans):
                continue
            start = _resume_at(layout, pos)
            piece = _final_piece(layout, start)
            if len(piece) <= budget and piece.strip():
                return piece, start
    return "", len(text)
