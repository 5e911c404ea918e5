"""What of the model's text may reach Slack as markup: pings, mentions, disguised links.

Pure tests of ``qwqbot.slack.inert``; the end-to-end ones (every Web API call of an answer,
a digest, a private answer) are in tests/slack/test_security_render.py.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from qwqbot.slack.inert import NOBODY, SOMEONE, WORD_JOINER, Audience, inert

WJ = WORD_JOINER
PEOPLE = Audience(frozenset({"U1", "W9"}), {"U2": "Bob", "U3": "<!channel> Eve"}.get)


def visible(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


# -- broadcasts and groups ------------------------------------------------------------------


@pytest.mark.parametrize(("written", "shown"), [
    ("<!channel>", f"@{WJ}channel"),
    ("<!here>", f"@{WJ}here"),
    ("<!everyone>", f"@{WJ}everyone"),
    ("<!here|here>", f"@{WJ}here"),
    ("<!CHANNEL|@channel>", f"@{WJ}channel"),
    ("<!Everyone>", f"@{WJ}everyone"),
    ("<!subteam^S0123ABC>", f"@{WJ}group"),
    ("<!subteam^S0123ABC|@design-team>", f"@{WJ}design-team"),
    ("<!chan\u200bnel>", f"@{WJ}channel"),  # zero-width space inside
    ("<\u2060!here>", f"@{WJ}here"),
    ("&lt;!channel&gt;", f"@{WJ}channel"),  # entities: shown as text by Slack, but a
    ("&#60;!here&#62;", f"@{WJ}here"),  # Markdown parser decodes them: inert as well
    ("&#x3C;!everyone&#x3E;", f"@{WJ}everyone"),
    ("<!date^1392734382^{date_short}|Feb 18, 2014>", "Feb 18, 2014"),
    ("@channel", f"@{WJ}channel"),
    ("@Here!", f"@{WJ}Here!"),
    ("@\u200beveryone", f"@{WJ}\u200beveryone"),
])
def test_broadcasts_and_group_mentions_become_words(written, shown):
    assert inert(f"Hey {written} now") == f"Hey {shown} now"


def test_broadcasts_inside_code_are_inert_too():
    # Slack's docs don't say code is exempt from mention parsing in markdown blocks.
    assert inert("`<!channel>` and\n```\n<!here>\n```") == \
        f"`@{WJ}channel` and\n```\n@{WJ}here\n```"


def test_a_ping_left_open_cannot_be_closed_by_what_follows():
    out = inert("<!channel|big news")
    assert out == "&lt;!channel|big news"
    assert "<!" not in inert(out + ">")


def test_ordinary_at_signs_and_angle_brackets_stay():
    text = "mail bob@here.com, @channels-team, a < b > c, <#C123|general>, 1 <2"
    assert inert(text) == text


# -- people ---------------------------------------------------------------------------------


def test_people_of_the_conversation_stay_mentions_and_others_become_names():
    text = "<@U1> <@U1|alice> <@W9> <@U2> <@U2|ceo> <@U777> <@U\u200b1>"
    assert inert(text, PEOPLE) == f"<@U1> <@U1> <@W9> Bob Bob {SOMEONE} <@U1>"


def test_a_name_is_plain_text_whatever_it_says():
    assert inert("<@U3>", PEOPLE) == f"@{WJ}channel Eve"


def test_by_default_nobody_is_mentioned():
    assert inert("<@U1> and &lt;@U1&gt;") == f"{SOMEONE} and {SOMEONE}"
    assert NOBODY("<@U1>") == SOMEONE


def test_angle_brackets_around_code_annotations_are_no_mention():
    assert inert("Map<@NonNull String, V> and <@>") == f"Map<@NonNull String, V> and {SOMEONE}"


def test_an_unclosed_mention_is_escaped():
    assert inert("<@U2 hello") == "&lt;@U2 hello"


# -- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "shown"), [
    ("<http://evil.example/x|http://good.example>", "<http://evil.example/x>"),
    ("<https://evil.example|good.example>", "<https://evil.example>"),
    ("<https://evil.example|see *good.example* now>", "<https://evil.example>"),
    ("[https://good.example](https://evil.example/x)", "<https://evil.example/x>"),
    ("[good.example](https://evil.example)", "<https://evil.example>"),
    ("[www.good.example](https://good.example.evil.example/)",
     "<https://good.example.evil.example/>"),
    ("![good.example](https://evil.example/i.png)", "<https://evil.example/i.png>"),
    ("[bob@good.example](mailto:bob@evil.example)", "<mailto:bob@evil.example>"),
    ("[10.0.0.1](https://evil.example)", "<https://evil.example>"),
    ("[https://good.example](<https://evil.example/a b> \"title\")", "<https://evil.example/a%20b>"),
    ("[https://good.example `]` x](https://evil.example)", "<https://evil.example>"),
    ("[good．example](https://evil.example)", "<https://evil.example>"),  # full-width dot
    ("[good.example](https://good.example@evil.example/)", "<https://evil.example/>"),
    ("<https://good.example@evil.example/>", "<https://evil.example/>"),
])
def test_a_label_naming_another_address_shows_the_real_target(written, shown):
    assert inert(f"Look: {written} ok") == f"Look: {shown} ok"


@pytest.mark.parametrize("link", [
    "[the Python docs](https://docs.python.org/3/)",
    "[docs.python.org](https://docs.python.org/3/library/)",
    "[python.org](https://docs.python.org/)",  # a subdomain of what is shown
    "[Python.org](https://www.python.org)",
    "[bob@good.example](mailto:bob@good.example)",
    "<https://docs.python.org|the Python docs>",
    "<https://docs.python.org/3/>",
    "<mailto:bob@good.example|Bob>",
])
def test_ordinary_links_keep_working(link):
    assert inert(f"See {link}.") == f"See {link}."


def test_links_to_anything_but_the_web_show_only_their_label():
    assert inert("[team](!channel) [Bob](@U2) [x](javascript:alert(1)) [y](/relative)") == \
        "team Bob x y"


def test_reference_links_are_judged_by_their_definition():
    text = "[good.example][1] and [docs][]\n\n[1]: https://evil.example\n[docs]: https://docs.python.org"
    out = inert(text)
    assert out.startswith("<https://evil.example> and [docs](https://docs.python.org)")
    assert out.endswith("[1]: https://evil.example\n[docs]: https://docs.python.org")


def test_a_link_inside_a_link_label_is_judged_too():
    assert inert("[[https://good.example](https://evil.example)](!here)") == "<https://evil.example>"


def test_links_inside_code_spans_are_left_to_the_code():
    assert inert("`[https://good.example](https://evil.example)`") == \
        "`[https://good.example](https://evil.example)`"


def test_every_link_commonmark_finds_is_honest():
    # A shape this module's own reading does not take for a link (a definition after an
    # indented line), checked against a CommonMark parser: link syntax is then shown as text.
    text = "[good.example]\n\n   [good.example]: https://evil.example"
    assert _dishonest(inert(text)) == []


# -- properties -----------------------------------------------------------------------------

_HOSTILE = st.sampled_from([
    "<!channel>", "<!here|here>", "<!EVERYONE>", "<!subteam^S1|@team>", "<!subteam^S2>",
    "&lt;!channel&gt;", "<@U1>", "<@U2>", "<@U777|boss>", "@here", "@channel",
    "<https://evil.example|https://good.example>", "[https://good.example](https://evil.example)",
    "[good.example](https://evil.example/p)", "[x](!channel)", "[y](@U2)",
    "[good.example][r]", "\n[r]: https://evil.example\n", "<https://good.example@evil.example>",
])
_NOISE = st.lists(st.sampled_from([*"ab <>!@|[]()`*_~\\&;#^\n:/.", "\u200b", "\u2060", "\ufeff",
                                   "channel", "here", "https://", "lt;", "gt;", "U2"]),
                  max_size=12).map("".join)
_TEXT = st.lists(st.one_of(_HOSTILE, _NOISE), max_size=12).map("".join)


def _pings(text: str) -> list[str]:
    seen = visible(text)
    return re.findall(r"<!(?:channel|here|everyone|subteam)", seen, re.IGNORECASE) + \
        re.findall(r"<@(?!U1>|W9>)[^\s|>]*(?:\|[^>]*)?>", seen)


def _dishonest(text: str) -> list[str]:
    """Links a CommonMark reader would show with good.example while they go elsewhere, and
    Slack-style ``<url|label>`` doing the same."""
    bad = [m.group(0) for m in re.finditer(r"<([^<>|\n]+)\|([^<>\n]+)>", visible(text))
           if "good.example" in m.group(2) and "good.example" not in m.group(1)]
    for block in MarkdownIt("commonmark").parse(text):
        href, label = "", None
        for token in block.children or []:
            if token.type == "link_open":
                href, label = str(token.attrs["href"]), ""
            elif token.type == "link_close" and label is not None:
                if "good.example" in label and not re.match(r"[a-z]+://good\.example", href):
                    bad.append(f"[{label}]({href})")
                label = None
            elif label is not None:
                label += token.content
    return bad


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example("<!chan\u200bnel")
@example("<\u200b!here|x")
@example("[<](x)!channel>")
def test_nothing_that_pings_or_disguises_survives(text):
    out = inert(text, PEOPLE)
    assert _pings(out) == [], (text, out)
    assert _dishonest(out) == [], (text, out)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_inert_is_a_fixed_point(text):
    once = inert(text, PEOPLE)
    assert inert(once, PEOPLE) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Co")), max_size=200))
def test_text_without_markup_is_left_alone(text):
    if not re.search(r"[<>&@\[\]]|://", text):
        assert inert(text) == text
