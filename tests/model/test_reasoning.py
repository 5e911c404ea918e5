"""The reasoning splitter: every way servers deliver QwQ's reasoning (inline tags with or without
the opening one, https://huggingface.co/Qwen/QwQ-32B; reasoning fields,
https://docs.vllm.ai/en/latest/features/reasoning_outputs.html), the edge cases, and chunking
invariance as a property."""

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from qwqbot.model.events import AnswerDelta, Completion, Finish, ReasoningDelta
from qwqbot.model.reasoning import ReasoningSplitter, in_code


def run(chunks: list[str], *, field: list[str] = (), finish: str | None = "stop"):  # type: ignore[assignment]
    splitter = ReasoningSplitter()
    events = []
    for part in field:
        events += splitter.feed_reasoning_field(part)
    for chunk in chunks:
        events += splitter.feed_content(chunk)
    events += splitter.finish(finish)
    completion = Completion()
    for event in events:
        completion.add(event)
    return completion, events


def split_text(content: str) -> tuple[str, str]:
    """``(reasoning, answer)`` of one whole ``content`` that ended normally."""
    completion, _ = run([content])
    return completion.reasoning, completion.answer


def test_inline_tags():
    assert split_text("<think>\nLet me see.\n</think>\n\nHello!") == ("Let me see.", "Hello!")


def test_missing_opening_tag_is_qwq_normal_output():
    assert split_text("Okay, the user said hi.\n</think>\n\nHi there!") == (
        "Okay, the user said hi.", "Hi there!")


def test_tags_split_across_chunks():
    completion, events = run(["<th", "ink>plan", " a</th", "ink", ">\n", "\nAns", "wer"])
    assert (completion.reasoning, completion.answer) == ("plan a", "Answer")
    # no fragment of a tag is ever emitted
    assert all("<" not in e.text and ">" not in e.text
               for e in events if isinstance(e, ReasoningDelta | AnswerDelta))


def test_reasoning_content_field_and_reasoning_field():
    for name in ("reasoning_content", "reasoning"):
        del name
        completion, _ = run(["The answer is 4."], field=["2+2 is ", "4"])
        assert (completion.reasoning, completion.answer) == ("2+2 is 4", "The answer is 4.")


def test_cut_off_inside_reasoning_stays_reasoning():
    completion, events = run(["<think>step 1, step 2, st"], finish="length")
    assert completion.reasoning == "step 1, step 2, st"
    assert completion.answer == ""
    assert completion.cut_off
    assert events[-1] == Finish("length", reclassified=False)


def test_cut_off_without_any_tag_stays_reasoning():
    completion, _ = run(["Hmm, let me think about this very long"], finish="length")
    assert completion.reasoning.startswith("Hmm") and completion.answer == ""


def test_no_tags_and_normal_stop_is_an_answer():
    # A model or server that does not think in tags: the text was the answer all along.
    completion, events = run(["Just ", "an answer."])
    assert (completion.reasoning, completion.answer) == ("", "Just an answer.")
    assert events[-1] == Finish("stop", reclassified=True)


def test_several_think_blocks():
    text = "<think>a</think>first <think>b</think> second"
    assert split_text(text) == ("ab", "first second")


def test_field_and_inline_tags_in_one_response():
    completion, _ = run(["<think>more</think>Answer"], field=["field "])
    assert (completion.reasoning, completion.answer) == ("field more", "Answer")


def test_field_then_stray_closing_tag_is_dropped():
    completion, _ = run(["\n\n</think>\n\nAnswer"], field=["thought"])
    assert (completion.reasoning, completion.answer) == ("thought", "Answer")


def test_think_tag_inside_code_in_the_answer_is_content():
    text = "r</think>Use it like this:\n```html\n<think>x</think>\n```\nand `<think>` inline."
    reasoning, answer = split_text(text)
    assert reasoning == "r"
    assert "```html\n<think>x</think>\n```" in answer
    assert "`<think>` inline" in answer


def test_stray_open_tag_inside_reasoning_never_reaches_the_user():
    assert split_text("a <think> b</think>c") == ("a  b", "c")


def test_feed_reads_the_reasoning_fields_then_the_content():
    splitter = ReasoningSplitter()
    events = splitter.feed({"role": "assistant", "reasoning_content": "a", "reasoning": "b",
                            "content": "<think>c</think>Answer"})
    events += splitter.finish("stop")
    completion = Completion()
    for event in events:
        completion.add(event)
    assert (completion.reasoning, completion.answer) == ("abc", "Answer")
    assert [e for e in events if isinstance(e, ReasoningDelta)][:2] == [ReasoningDelta("a"),
                                                                       ReasoningDelta("b")]


def test_feed_ignores_what_is_not_text():
    splitter = ReasoningSplitter()
    assert splitter.feed(None) == [] and splitter.feed("content") == []
    assert splitter.feed({"content": None, "reasoning_content": None, "reasoning": 3}) == []
    # a field that was null did not count as seen: unclosed text is still reclassified
    assert splitter.feed({"content": "Just an answer."}) == [ReasoningDelta("Just an answer.")]
    assert splitter.finish("stop") == [Finish("stop", reclassified=True)]


def test_in_code():
    assert in_code("```py\nx = '")
    assert not in_code("```py\nx\n```\n")
    assert in_code("see `")
    assert not in_code("see `a` and ")


TOKENS = ["<think>", "</think>", "<", "</", "think", ">", "a", "b", " ", "\n", "```", "`", "th",
          "ink>", "/think>", "<thi", "x y", "\n\n"]


@st.composite
def chunked(draw):
    text = "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=40)))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[i:j] for i, j in itertools.pairwise(bounds)]


@settings(max_examples=600, deadline=None)
@given(chunked(), st.sampled_from(["stop", "length", None]), st.booleans())
@example(("<think>a</think>b", ["<", "think>a</", "think>b"]), "stop", False)
def test_any_chunking_splits_the_same_way(case, finish, with_field):
    text, chunks = case
    field = ["f"] if with_field else []
    whole, whole_events = run([text], field=field, finish=finish)
    parts, part_events = run(chunks, field=field, finish=finish)
    assert (parts.reasoning, parts.answer) == (whole.reasoning, whole.answer)
    assert part_events[-1] == whole_events[-1]

    def joined(events, kind):
        return "".join(e.text for e in events if isinstance(e, kind))

    # the streamed deltas themselves agree, not just the totals
    assert joined(part_events, ReasoningDelta) == joined(whole_events, ReasoningDelta)
    assert joined(part_events, AnswerDelta) == joined(whole_events, AnswerDelta)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab \n`<>/thinks", max_size=60), st.text(alphabet="ab \n.", max_size=30))
def test_no_tag_leaks_into_the_answer_outside_code(reasoning, answer):
    _, got = split_text(f"{reasoning}</think>{answer}")
    if "`" not in reasoning:
        assert "<think>" not in got and "</think>" not in got
