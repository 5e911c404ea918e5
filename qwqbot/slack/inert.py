"""What of the model's text may reach Slack as markup, and what must become plain text. Pure.

The bot posts with its own privileges, and anyone who can write in a thread (or a channel a
digest reads) can steer what the model writes. So every rendering path (``markdown``
blocks, a message's ``text`` fallback, ``markdown_text`` of streams, the reasoning
attachment, the plain-text fallback, digests, private answers, status lines) passes the
model's words through :func:`inert` (or an :class:`Audience`, which is the same with the
people of the conversation allowed), after its last transformation.

What Slack does, and what this module relies on:

- ``&``, ``<`` and ``>`` are Slack's control characters; text shows ``&lt;`` etc. as the
  characters, and only those three entities are decoded
  (https://docs.slack.dev/messaging/formatting-message-text, "Escaping text").
- ``<!here>``, ``<!channel>``, ``<!everyone>`` notify a channel or the workspace and
  ``<!subteam^ID>`` a user group; ``<@U…>`` / ``<@W…>`` notify one person; ``<url|label>``
  shows only the label (the same page, on mentions and links). They work in a message's
  text, blocks and attachments.
- The ``markdown`` block and the streaming methods' ``markdown_text`` take standard
  Markdown, links ``[text](url)`` and code included, and Slack translates it into its own
  markup (https://docs.slack.dev/reference/block-kit/blocks/markdown-block,
  https://docs.slack.dev/reference/methods/chat.appendStream: "This text is what will be
  appended to the message received so far", so a construct can span two appends).
  Slack does not document how a link whose target is not a web address, or a ``<!…>``
  inside code or behind an entity, comes out of that translation; so none is trusted.

The rules (one pass, repeated until nothing changes, so the result is a fixed point: a
later step, or a second pass, cannot turn it back into markup):

- Every ``<!…>`` (broadcasts, ``<!subteam^…>``, any case, with or without ``|label``, with
  invisible characters or Markdown marks inside, or written with entities
  ``&lt;!channel&gt;``) becomes inert words: "@channel" with a word joiner after the "@",
  the group's label, a date's fallback text. A ``<`` that opens ``!`` or ``@`` but never
  closes becomes ``&lt;``. Inside code too: no docs say Slack skips mentions there, and
  shown code loses little.
- ``<@U…>`` survives only for the people of the conversation (``Audience.allowed``);
  anyone else becomes their plain name, or "@someone".
- Bare "@channel", "@here", "@everyone" get a word joiner, in case something (a client,
  ``link_names``) links them.
- A link, Slack's ``<url|label>`` or Markdown's ``[label](url)`` / ``[label][ref]`` /
  images, whose label names an address (a URL, a domain, an e-mail) other than its
  target's host (or a parent domain of it) becomes its bare target
  (``<https://evil.example/…>``), so what is shown is where it goes. Ordinary labels ("the
  Python docs") stay links. A Markdown link to anything but http(s) or mailto
  (``[x](!channel)``) is shown as its label only. A user name in a URL
  (``https://good.example@evil.example``) is dropped. Labels that merely look like
  domains ("Node.js") show their target too: the safe side of the doubt.
- Last, a CommonMark parser reads the result; should it find a link the rules above
  missed, no Markdown link of that text stays a link.
"""

from __future__ import annotations

import bisect
import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

__all__ = ["NOBODY", "SOMEONE", "WORD_JOINER", "Audience", "inert"]

WORD_JOINER = "\u2060"
#: How a mention of someone outside the conversation reads when their name is unknown.
SOMEONE = f"@{WORD_JOINER}someone"
WEB_SCHEMES = frozenset({"http", "https", "mailto"})
_MAX_PASSES = 8
_MAX_DEPTH = 8


def _no_name(user_id: str) -> str | None:
    return None


@dataclass(frozen=True)
class Audience:
    """The people the model's text may notify, and how to name anyone else it mentions.

    Callable: ``audience(text)`` is ``inert(text, audience)``, so it can be handed to a
    renderer wherever a text filter is expected."""

    allowed: frozenset[str] = frozenset()
    names: Callable[[str], str | None] = _no_name

    def __call__(self, text: str) -> str:
        return inert(text, self)


#: Nobody may be notified: every user mention becomes a name.
NOBODY = Audience()


def inert(text: str, audience: Audience = NOBODY) -> str:
    """``text`` with nothing left that pings, notifies a stranger or disguises a link."""
    safe = _settled(text, audience)
    if _hidden_links(safe):
        # A link this module's reading of Markdown missed but a CommonMark parser finds:
        # no Markdown link of this text stays a link.
        safe = _settled(_unlinked(safe), audience)
        if _hidden_links(safe):
            safe = _settled(safe.replace("[", "("), audience)
    return safe


def _settled(text: str, audience: Audience) -> str:
    """``_once`` applied until it changes nothing more."""
    for _ in range(_MAX_PASSES):
        done = _once(text, audience)
        if done == text:
            return done
        text = done
    # Never reached by any text we know of; if it ever is, give up on markup altogether.
    return _once(text.replace("<", "&lt;").replace("[", "("), audience)


def _once(text: str, audience: Audience) -> str:
    text = _USERINFO.sub(r"\1", text)
    return _SCAN.sub(lambda m: _token(m, audience), _links(text, 0))


#: ``https://good.example@evil.example/`` reads as good.example and goes to evil.example: the
#: part before the "@" (a user name for the site) is dropped wherever a URL appears.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/?#<>|\[\]()@]*@", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Slack's own tokens: <!…>, <@…>, <url|label>, and bare @channel
# ---------------------------------------------------------------------------------------------

_OPEN = r"(?:<|&lt;|&#0*60;|&#x0*3c;)"
_CLOSE = r"(?:>|&gt;|&#0*62;|&#x0*3e;)"
_SCAN = re.compile(
    rf"(?P<open>{_OPEN})(?P<body>(?:(?!{_OPEN}|{_CLOSE})[^\n])*){_CLOSE}"
    r"|(?P<lone><)"
    r"|(?P<at>(?<![\w@])@)",
    re.IGNORECASE)
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_SPACE = re.compile(r"\s")
_MARKS = re.compile(r"[*_~`\\#]")
_BROADCAST_WORDS = ("channel", "here", "everyone")


def _visible(text: str) -> str:
    """``text`` without invisible format characters (zero-width spaces, joiners, marks)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _token(match: re.Match[str], audience: Audience) -> str:
    if match.group("lone") is not None:
        return "&lt;" if _next_visible(match.string, match.end()) in ("!", "@") else "<"
    if match.group("at") is not None:
        return _bare_at(match)
    opener, body = match.group("open"), _visible(match.group("body"))
    # Marks a renderer may drop ("<**!**channel>", "<\\!here>", "<#!here>") don't make a
    # ping safe.
    bare = _MARKS.sub("", body)
    if bare.startswith("!"):
        return _special(body[body.index("!") + 1:])
    user = bare[1:].split("|", 1)[0].strip()
    if bare.startswith("@") and not _SPACE.search(user):  # not "<@Nullable T>" in code
        if user in audience.allowed and _USER_ID.fullmatch(user):
            return f"<@{user}>" if opener == "<" else match.group(0)
        return _name(audience.names(user))
    if opener != "<" or body.startswith("#"):
        return match.group(0)  # shown as text, or a channel link (notifies no one)
    url, _, label = body.partition("|")
    if label and _disguised(_plain(label), _unescape(url)):
        return f"<{url}>"
    return match.group(0)


def _next_visible(text: str, i: int) -> str:
    while i < len(text) and (unicodedata.category(text[i]) == "Cf" or text[i] in "*_~`\\#"):
        i += 1
    return text[i:i + 1]


def _special(rest: str) -> str:
    """``<!…>`` as words: a broadcast or group as "@word" that links nowhere, a date as
    its fallback text."""
    command, _, label = rest.partition("|")
    kind = command.split("^", 1)[0].strip().lower()
    if kind == "date":
        return label.strip() or "a date"
    word = label.strip().lstrip("@").strip() if kind == "subteam" else kind
    return f"@{WORD_JOINER}{word or 'group'}"


def _bare_at(match: re.Match[str]) -> str:
    after = match.string[match.end():match.end() + 40]
    if after.startswith(WORD_JOINER):
        return "@"  # already inert
    word = re.match(r"[a-z]+", _visible(after).lower())
    if word and word.group(0) in _BROADCAST_WORDS:
        return f"@{WORD_JOINER}"
    return "@"


def _name(name: str | None) -> str:
    """A person's display name as plain text that cannot be markup in turn."""
    clean = " ".join(_visible(name or "").split())
    return (inert(clean).replace("<", "").replace(">", "") if clean else "") or SOMEONE


# ---------------------------------------------------------------------------------------------
# Markdown links
# ---------------------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"^ {0,3}\[((?:[^\]\\\n]|\\.){1,999})\]:[ \t]*\n?[ \t]*(<[^<>\n]*>|\S+)", re.MULTILINE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")
_BACKSLASHED = re.compile(r"\\([!-/:-@\[-`{-~])")
#: Characters a kept link's target never carries raw: they could end or relabel it.
_UNSAFE_IN_URL = re.compile(r"[\s|<>\"\\`()\[\]{}^\x00-\x1f\x7f]")


def _references(text: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for m in _REFERENCE.finditer(text):
        target = m.group(2)
        refs.setdefault(_ref_key(m.group(1)), target[1:-1] if target.startswith("<") else target)
    return refs


def _ref_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _escaped(text: str, i: int) -> bool:
    backslashes = 0
    while i - backslashes - 1 >= 0 and text[i - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _links(text: str, depth: int) -> str:
    if "[" not in text:
        return text
    refs = _references(text)
    pairs = _bracket_pairs(text)
    out: list[str] = []
    i = 0
    while (j := text.find("[", i)) >= 0:
        end = pairs.get(j, -1)
        if end < 0 or _is_definition(text, j, end):
            out.append(text[i:j + 1])
            i = j + 1
            continue
        found = _target(text, end, refs, text[j + 1:end])
        if found is None:
            out.append(text[i:j + 1])
            i = j + 1
            continue
        href, stop = found
        image = j - 1 >= i and text[j - 1] == "!" and not _escaped(text, j - 1)
        start = j - 1 if image else j
        out.append(text[i:start])
        out.append(_checked(text[j + 1:end], href, image=image, depth=depth))
        i = stop
    out.append(text[i:])
    return "".join(out)


_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _bracket_pairs(text: str) -> dict[int, int]:
    """Each ``[`` that a ``]`` closes, and where: innermost first, never across a blank
    line, not inside code spans (which bind tighter than brackets), escapes skipped. One
    pass over the text, whatever its brackets."""
    runs = {m.start(): len(m.group(0)) for m in _BACKTICKS.finditer(text)}
    closer: dict[int, int] = {}  # a backtick run -> the next run of the same length
    seen: dict[int, int] = {}
    for start in sorted(runs, reverse=True):
        if runs[start] in seen:
            closer[start] = seen[runs[start]]
        seen[runs[start]] = start
    blanks = {m.start(): m.end() for m in _BLANK_LINE.finditer(text)}
    starts = sorted(blanks)
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "`":
            size = runs.get(i, 1)
            close = closer.get(i, -1)
            blank = bisect.bisect_left(starts, i)
            if close > 0 and (blank == len(starts) or starts[blank] >= close):
                i = close + runs[close]
            else:
                i += size
        elif i in blanks:
            stack.clear()
            i = blanks[i]
        elif c == "[":
            stack.append(i)
            i += 1
        elif c == "]" and stack:
            pairs[stack.pop()] = i
            i += 1
        else:
            i += 1
    return pairs


def _is_definition(text: str, start: int, end: int) -> bool:
    """``[label]:`` at the start of a line (up to three spaces in) defines a reference."""
    line = text.rfind("\n", 0, start) + 1
    return text.startswith("]:", end) and len(text[line:start]) <= 3 and not text[line:start].strip()


def _target(text: str, end: int, refs: dict[str, str], label: str) -> tuple[str, int] | None:
    """The target of the link whose label ends at ``end``, and where the link ends."""
    after = end + 1
    if text.startswith("(", after):
        inline = _inline_target(text, after + 1)
        if inline is not None:
            return inline
    if text.startswith("[", after):
        close = text.find("]", after + 1)
        if close > 0 and "\n\n" not in text[after:close]:
            key = _ref_key(text[after + 1:close]) or _ref_key(label)
            if key in refs:
                return refs[key], close + 1
    if _ref_key(label) in refs:
        return refs[_ref_key(label)], after
    return None


def _inline_target(text: str, i: int) -> tuple[str, int] | None:
    """CommonMark's ``(destination "title")`` from just after the ``(``."""
    n = len(text)
    i = _skip_blank(text, i)
    if text.startswith("<", i):
        close = text.find(">", i + 1)
        if close < 0 or "\n" in text[i:close] or "<" in text[i + 1:close]:
            return None
        href, i = text[i + 1:close], close + 1
    else:
        begin, parens = i, 0
        while i < n and text[i] > " " and not (text[i] == ")" and parens == 0):
            if text[i] == "\\":
                i += 1
            elif text[i] == "(":
                parens += 1
            elif text[i] == ")":
                parens -= 1
            i += 1
        if parens:
            return None
        href = text[begin:i]
    i = _skip_blank(text, i)
    if i < n and text[i] in "\"'(":
        closer = ")" if text[i] == "(" else text[i]
        j = i + 1
        while j < n and text[j] != closer:
            j += 2 if text[j] == "\\" else 1
        if j >= n or "\n\n" in text[i:j]:
            return None
        i = _skip_blank(text, j + 1)
    if i < n and text[i] == ")":
        return href, i + 1
    return None


def _skip_blank(text: str, i: int) -> int:
    newlines = 0
    while i < len(text) and text[i] in " \t\n":
        newlines += text[i] == "\n"
        if newlines > 1:
            break
        i += 1
    return i


def _checked(label: str, href: str, *, image: bool, depth: int) -> str:
    """A link as it may be shown: itself, its bare target, or only its label."""
    target = _unescape(href)
    if depth >= _MAX_DEPTH:
        return f"<{_safe_url(target)}>" if _scheme(target) in WEB_SCHEMES else ""
    shown = _links(label, depth + 1)
    if _scheme(target) not in WEB_SCHEMES:
        return shown
    if _disguised(_plain(label), target):
        return f"<{_safe_url(target)}>"
    return f"{'!' if image else ''}[{shown}]({_safe_url(target)})"


def _unescape(text: str) -> str:
    text = _BACKSLASHED.sub(r"\1", text)
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)


def _safe_url(url: str) -> str:
    return _UNSAFE_IN_URL.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), url)


def _scheme(url: str) -> str:
    m = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.\-]*):", url)
    return m.group(1).lower() if m else ""


# ---------------------------------------------------------------------------------------------
# What a CommonMark parser makes of the result
# ---------------------------------------------------------------------------------------------

_COMMONMARK = MarkdownIt("commonmark", {"html": False})
_LINK_SYNTAX = re.compile(r"\](?=[(\[])")
_DEFINITION = re.compile(r"^( {0,3})\[", re.MULTILINE)


def _hidden_links(text: str) -> bool:
    """Whether a CommonMark reading of ``text`` has a link (or image) that goes elsewhere
    than its label says, or anywhere but the web or e-mail. Autolinks show their target."""
    if "[" not in text:
        return False
    for block in _COMMONMARK.parse(text):
        label: list[str] | None = None
        href = ""
        for token in block.children or []:
            if token.type == "image":
                if not _shown_right(token.content, str(token.attrs.get("src", ""))):
                    return True
            elif token.type == "link_open" and token.markup != "autolink":
                label, href = [], str(token.attrs.get("href", ""))
            elif token.type == "link_close" and label is not None:
                if not _shown_right("".join(label), href):
                    return True
                label = None
            elif label is not None:
                label.append(token.content)
    return False


def _shown_right(label: str, href: str) -> bool:
    return _scheme(href) in WEB_SCHEMES and not _disguised(_plain(label), href)


def _unlinked(text: str) -> str:
    """No ``](`` / ``][`` and no reference definitions: Markdown link syntax shown as text."""
    return _DEFINITION.sub(rf"\1{WORD_JOINER}[", _LINK_SYNTAX.sub(f"]{WORD_JOINER}", text))


# ---------------------------------------------------------------------------------------------
# Does a label name an address other than the link's target?
# ---------------------------------------------------------------------------------------------

_URL_IN_LABEL = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s<>]+|mailto:[^\s<>]+")
_EMAIL_IN_LABEL = re.compile(r"[\w.+\-]+@((?:[\w\-]+\.)+[^\W\d_]{2,})")
_DOMAIN_IN_LABEL = re.compile(r"(?<![\w.@\-])((?:[\w\-]+\.)+[^\W\d_]{2,})(?![\w\-])")
_IP_IN_LABEL = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])")
_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\uff0e": "."})


def _plain(label: str) -> str:
    """A label as a reader sees it: no formatting marks, escapes, entities or invisible
    characters, compatibility forms folded (a full-width "．" reads as a dot)."""
    text = unicodedata.normalize("NFKC", _visible(_unescape(label))).translate(_DOTS)
    return " ".join(re.sub(r"[*_~`]", "", text).split()).lower()


def _disguised(label: str, target: str) -> bool:
    """``label`` (plain, lower case) names a URL, domain or e-mail address that is not
    where ``target`` leads."""
    host, mailbox = _destination(target)
    rest = label
    for found in _URL_IN_LABEL.findall(label):
        rest = rest.replace(found, " ")
        url = found.rstrip(".,;:!?'\")]}")
        shown_host, shown_mailbox = _destination(url)
        if shown_mailbox is not None:
            if shown_mailbox != mailbox:
                return True
        elif shown_host is None or not _same_site(shown_host, host):
            return True
    for email in _EMAIL_IN_LABEL.finditer(rest):
        if mailbox is not None:
            if email.group(0) != mailbox:
                return True
        elif not _same_site(email.group(1), host):
            return True
    rest = _EMAIL_IN_LABEL.sub(" ", rest)
    shown = _DOMAIN_IN_LABEL.findall(rest) + _IP_IN_LABEL.findall(rest)
    return any(not _same_site(domain, host) for domain in shown)


def _destination(url: str) -> tuple[str | None, str | None]:
    """(host, mailbox) of a URL: the host for web addresses, the address for mailto."""
    url = url.strip()
    if _scheme(url) == "mailto":
        mailbox = url.split(":", 1)[1].split("?", 1)[0].strip().lower()
        return (mailbox.rpartition("@")[2] or None), mailbox
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None, None
    return host, None


def _same_site(shown: str, host: str | None) -> bool:
    """The target's host is the shown domain or one of its subdomains."""
    if host is None:
        return False
    shown, host = _host_key(shown), _host_key(host)
    return bool(shown) and (host == shown or host.endswith("." + shown))


def _host_key(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    host = host.removeprefix("www.")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
