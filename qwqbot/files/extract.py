"""A shared file's bytes -> the text the model reads, or the reason there is none.

- Text-like files are decoded safely: a byte-order mark decides (UTF-8, UTF-16, UTF-32);
  otherwise strict UTF-8, then Windows-1252 for the odd legacy export; bytes that decode to
  many control characters (or hold NUL bytes without a UTF-16 mark) are not text, whatever
  the name says. A download cut at the size cap may end inside a UTF-8 sequence: that tail is
  dropped, not turned into garbage. Line ends become ``\\n``.
- Slack posts and canvases download as HTML: their text is what a reader sees, tags dropped.
- PDFs are read with pypdf (https://pypdf.readthedocs.io/en/stable/user/extract-text.html),
  page by page, each page headed ``[page N]`` so answers can point at one. A PDF whose pages
  hold no text is a scan (its pages are pictures): the model is told so, not given nothing.
  Parsing a PDF is CPU work, so ``extract_async`` runs it in a worker thread
  (``asyncio.to_thread``): the event loop keeps serving Slack meanwhile.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import logging
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

from qwqbot.files.kinds import Kind

log = logging.getLogger(__name__)

#: Text read from one PDF at most (characters): far beyond any prompt's room.
MAX_PDF_CHARS = 2_000_000
#: Pages read from one PDF at most.
MAX_PDF_PAGES = 500
#: Bytes decoded in the event loop itself; larger files are decoded in a worker thread.
INLINE_DECODE_BYTES = 256 * 1024
# Share of control characters above which decoded bytes are not taken for text.
_MAX_CONTROL_SHARE = 0.01
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v\x1b")  # \x1b: ANSI colours in logs
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))

NOT_TEXT = "it is not a text file"
BINARY_HINT = "it is not a text file or a PDF (the bot reads text, code, data and PDFs)"
SCANNED = "it is a scanned PDF with no text in it (the bot reads text, not pictures of text)"
ENCRYPTED = "the PDF is password-protected"
BROKEN_PDF = "it is not a PDF the bot can read (damaged or unusual)"
EMPTY = "it is empty"


@dataclass(frozen=True, slots=True)
class Extracted:
    """A file's text, or why there is none (``reason``, words for the person who shared it)."""

    text: str | None
    reason: str | None = None
    #: the text stops before the file's end (a PDF past ``MAX_PDF_CHARS``/``MAX_PDF_PAGES``)
    partial: bool = False
    pages: int | None = None


def decode_text(data: bytes, *, complete: bool = True) -> str | None:
    """``data`` as text, or None when it is not text. ``complete``: False when ``data`` is the
    start of a longer file (a multi-byte character may be cut at its end)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            return _normalised(_decode(body, encoding, complete=complete))
    if b"\x00" in data[:65536]:
        return None  # UTF-16 without a mark, or binary: too uncertain to guess
    text = _decode(data, "utf-8", complete=complete)
    if text is None:
        text = data.decode("cp1252", errors="replace")
    if _control_share(text) > _MAX_CONTROL_SHARE:
        return None
    return _normalised(text)


def _decode(data: bytes, encoding: str, *, complete: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        # final=False keeps an incomplete last character back instead of failing on it.
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None


def _control_share(text: str) -> float:
    sample = text[:100_000]
    if not sample:
        return 0.0
    controls = sum(1 for c in sample if c not in _ALLOWED_CONTROLS
                   and unicodedata.category(c) == "Cc")
    return controls / len(sample)


def _normalised(text: str | None) -> str | None:
    if text is None:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


class _Visible(HTMLParser):
    """The text a reader sees in an HTML document: tags dropped, blocks on their own lines."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "pre", "blockquote", "section", "article", "table", "ul", "ol", "hr"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The visible text of an HTML document, with at most one blank line in a row."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def extract_pdf(data: bytes) -> Extracted:
    """The text layer of a PDF, page by page (``[page N]`` before each page with text)."""
    from pypdf import PdfReader  # imported here: only PDFs pay for it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return Extracted(None, ENCRYPTED)
        pages = len(reader.pages)
        parts: list[str] = []
        size = 0
        partial = False
        for number, page in enumerate(reader.pages, start=1):
            if number > MAX_PDF_PAGES or size > MAX_PDF_CHARS:
                partial = True
                break
            text = (page.extract_text() or "").strip()
            if text:
                parts.append(f"[page {number}]\n{text}")
                size += len(text)
    except Exception as exc:  # pypdf raises many kinds on malformed files (PdfReadError, ...)
        log.info("PDF not readable: %s", type(exc).__name__)
        return Extracted(None, BROKEN_PDF)
    if not parts:
        return Extracted(None, SCANNED if pages else EMPTY, pages=pages)
    text = _normalised("\n\n".join(parts)) or ""
    return Extracted(text, partial=partial, pages=pages)


def extract(data: bytes, kind: Kind, *, complete: bool = True) -> Extracted:
    """The text of a file of ``kind`` (text, post, pdf or unknown) from its bytes.
    ``complete``: False when ``data`` is only the file's beginning (a size cap)."""
    if kind == "pdf":
        return extract_pdf(data)
    if not data:
        return Extracted(None, EMPTY)
    text = decode_text(data, complete=complete)
    if text is None:
        return Extracted(None, NOT_TEXT)
    if kind == "post" and "<" in text:
        text = html_text(text)
    text = text.rstrip()  # a file's last line end (or trailing blanks) says nothing
    if not text:
        return Extracted(None, EMPTY)
    return Extracted(text, partial=not complete)


async def extract_async(data: bytes, kind: Kind, *, complete: bool = True) -> Extracted:
    """``extract`` off the event loop when it is more than a moment's work (PDFs, big texts)."""
    if kind != "pdf" and len(data) <= INLINE_DECODE_BYTES:
        return extract(data, kind, complete=complete)
    return await asyncio.to_thread(extract, data, kind, complete=complete)
