"""Bytes -> text: decoding that never guesses wildly, Slack posts, PDFs made in the test."""

from __future__ import annotations

import codecs

import pytest

from qwqbot.files import extract as ex
from qwqbot.files.kinds import classify, label
from tests.files.pdfs import make_pdf


def test_utf8_text_keeps_its_characters_and_line_ends_become_newlines():
    result = ex.extract("naïve café\r\n日本語\r\n".encode(), "text")
    assert result == ex.Extracted("naïve café\n日本語")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-8"])
def test_a_byte_order_mark_decides_the_encoding(encoding):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
           "utf-32-le": codecs.BOM_UTF32_LE, "utf-8": codecs.BOM_UTF8}[encoding]
    assert ex.decode_text(bom + "Zürich, 12 °C".encode(encoding)) == "Zürich, 12 °C"


def test_legacy_windows_text_is_read_as_cp1252():
    assert ex.decode_text("Müller – 5 €".encode("cp1252")) == "Müller – 5 €"


@pytest.mark.parametrize("data", [b"\x00\x01\x02ELF\x00\x00", bytes(range(1, 32)) * 20,
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_binary_bytes_are_not_text_whatever_the_name_says(data):
    assert ex.decode_text(data) is None
    assert ex.extract(data, "text").reason == ex.NOT_TEXT


def test_ansi_colours_in_logs_are_text():
    assert ex.decode_text(b"\x1b[31mERROR\x1b[0m boom\n") == "\x1b[31mERROR\x1b[0m boom\n"


def test_a_download_cut_inside_a_character_drops_the_broken_tail():
    data = "ok é".encode()[:-1]  # the cap fell inside "é"
    assert ex.decode_text(data, complete=False) == "ok "
    result = ex.extract("line 1\nline 2 é".encode()[:-1], "text", complete=False)
    assert result.text == "line 1\nline 2" and result.partial


def test_empty_and_blank_files_say_so():
    assert ex.extract(b"", "text").reason == ex.EMPTY
    assert ex.extract(b"  \n\n", "text").reason == ex.EMPTY


def test_a_slack_post_is_read_as_its_visible_text():
    html = (b"<html><head><title>t</title><style>p{}</style></head><body><h1>Plan</h1>"
            b"<p>Ship <b>Friday</b> &amp; tell Bob.</p><ul><li>one</li><li>two</li></ul>"
            b"<script>alert(1)</script></body></html>")
    assert ex.extract(html, "post").text == "Plan\n\nShip Friday & tell Bob.\n\none\n\ntwo"


def test_a_pdf_is_read_page_by_page():
    pdf = make_pdf([["Quarterly report", "Revenue (EUR): 1,200"], [], ["Appendix"]])
    result = ex.extract(pdf, "pdf")
    assert result.text == "[page 1]\nQuarterly report\nRevenue (EUR): 1,200\n\n[page 3]\nAppendix"
    assert result.pages == 3 and not result.partial


def test_a_pdf_without_text_is_a_scan_and_a_broken_one_is_named_so():
    assert ex.extract(make_pdf([[], []]), "pdf") == ex.Extracted(None, ex.SCANNED, pages=2)
    assert ex.extract(b"%PDF-1.4\nnot really", "pdf").reason == ex.BROKEN_PDF


def test_a_long_pdf_is_read_up_to_its_page_cap(monkeypatch):
    monkeypatch.setattr(ex, "MAX_PDF_PAGES", 2)
    result = ex.extract(make_pdf([["a"], ["b"], ["c"]]), "pdf")
    assert result.text == "[page 1]\na\n\n[page 2]\nb" and result.partial


async def test_pdfs_are_parsed_off_the_event_loop(monkeypatch):
    import threading

    seen: list[str] = []
    real = ex.extract_pdf

    def spy(data: bytes) -> ex.Extracted:
        seen.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(ex, "extract_pdf", spy)
    result = await ex.extract_async(make_pdf([["hi"]]), "pdf")
    assert result.text == "[page 1]\nhi"
    assert seen and seen[0] != threading.main_thread().name


@pytest.mark.parametrize(("name", "filetype", "mimetype", "mode", "kind"), [
    ("build.log", "text", "text/plain", "hosted", "text"),
    ("orders.csv", "csv", "text/csv", "hosted", "text"),
    ("Untitled", "python", "text/plain", "snippet", "text"),
    ("x", "", "", "snippet", "text"),
    ("notes", "post", "application/vnd.slack-docs", "post", "post"),
    ("report.pdf", "pdf", "application/pdf", "hosted", "pdf"),
    ("a.png", "png", "image/png", "hosted", "image"),
    ("call.m4a", "m4a", "audio/mp4", "hosted", "media"),
    ("sheet.xlsx", "xlsx", "application/vnd.openxmlformats", "hosted", "binary"),
    ("config.yaml", "binary", "application/octet-stream", "hosted", "text"),  # by its name
    ("data.json", "", "application/json", "hosted", "text"),  # by its mimetype
    ("README", "binary", "application/octet-stream", "hosted", "unknown"),
])
def test_kinds_come_from_slacks_filetype_then_the_mimetype_then_the_name(name, filetype, mimetype,
                                                                        mode, kind):
    assert classify(name=name, filetype=filetype, mimetype=mimetype, mode=mode) == kind


def test_labels_name_the_type_briefly():
    assert label("text", filetype="csv") == "CSV"
    assert label("text", filetype="text") == "text"
    assert label("text", filetype="", name="build.log") == "log"
    assert label("image", filetype="png") == "PNG image"
    assert label("pdf", filetype="pdf") == "PDF"
