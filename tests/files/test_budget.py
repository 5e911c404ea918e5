"""Sharing the prompt's room among a thread's files, and the footer's words about them."""

from __future__ import annotations

from qwqbot.files.budget import (
    MIN_FILE_TOKENS,
    UNSEEN_NOTE,
    StoredFile,
    file_room,
    place_files,
)
from qwqbot.files.footer import footer_lines
from qwqbot.tokens import estimate_tokens


def lines(n: int, tag: str = "x") -> str:
    return "\n".join(f"{tag} line {i:05d} of the file" for i in range(n))


def f(ts: str, name: str, text: str | None, **kw) -> StoredFile:
    return StoredFile(ts=ts, name=name, label="log", text=text, **kw)


def test_the_room_leaves_the_system_message_the_question_and_a_reserve():
    assert file_room(100_000, fixed_tokens=1_000, question_tokens=50) == 100_000 - 1_050 - 4_000
    assert file_room(8_000, fixed_tokens=500, question_tokens=500) == 8_000 - 1_000 - 2_000
    assert file_room(1_000, fixed_tokens=900, question_tokens=500) == 0


def test_everything_fits_whole_when_there_is_room():
    placement = place_files([f("1", "a.log", "hello"), f("2", "b.log", "world")], room=10_000,
                            question_ts="2")
    assert [(s.number, s.name, s.text, s.note) for s in placement.by_ts["1"] + placement.by_ts["2"]] \
        == [(1, "a.log", "hello", ""), (2, "b.log", "world", "")]
    assert placement.report().read == ["a.log", "b.log"]


def test_the_questions_files_share_the_room_fairly_so_a_huge_log_cannot_crowd_out_a_small_file():
    small, huge = lines(20, "small"), lines(20_000, "huge")
    placement = place_files([f("9", "huge.log", huge), f("9", "config.yml", small)], room=3_000,
                            question_ts="9")
    by_name = {s.name: s for s in placement.by_ts["9"]}
    assert by_name["config.yml"].text == small  # whole
    shown = by_name["huge.log"].text
    assert shown is not None and huge.startswith(shown) and by_name["huge.log"].note.startswith(
        "shortened to fit: only the first ")
    used = sum(estimate_tokens(s.text or "") for s in placement.by_ts["9"])
    assert 2_000 < used <= 3_000
    report = placement.report()
    assert report.read == ["config.yml"] and report.cut[0][0] == "huge.log"
    assert report.cut[0][1].endswith(" of 20,000 lines")


def test_earlier_files_get_what_is_left_newest_first_and_are_left_out_below_the_minimum():
    question = lines(200, "q")
    older, newer = lines(50, "old"), lines(50, "new")
    need_q = estimate_tokens(question) + 100
    room = need_q + estimate_tokens(newer) + 70 + MIN_FILE_TOKENS // 2
    placement = place_files([f("1", "old.log", older), f("2", "new.log", newer),
                             f("3", "q.log", question)], room=room, question_ts="3")
    report = placement.report()
    assert report.read == ["new.log", "q.log"]
    assert report.skipped == ["old.log"]
    assert "1" not in placement.by_ts  # nothing of the old message's file is shown


def test_files_without_text_are_told_to_the_model_and_the_footer():
    placement = place_files([
        f("1", "scan.pdf", None, reason="it is a scanned PDF"),
        f("1", "cat.png", None, unseen=True),
        f("1", "a.log", "fine"),
    ], room=1_000, question_ts="1")
    shown = placement.by_ts["1"]
    assert [(s.name, s.text, s.note) for s in shown] == [
        ("scan.pdf", None, "it is a scanned PDF"), ("cat.png", None, UNSEEN_NOTE), ("a.log", "fine", "")]
    report = placement.report()
    assert footer_lines(report, name=str.upper) == [
        ":paperclip: Files: read A.LOG",
        ":warning: Couldn't read SCAN.PDF: it is a scanned PDF.",
        ":frame_with_picture: The model reads text only, so it did not see CAT.PNG.",
    ]


def test_a_file_read_only_in_part_says_the_file_is_longer():
    placement = place_files([f("1", "big.log", lines(10), partial=True)], room=10_000,
                            question_ts="1")
    assert placement.report().cut == [("big.log", "the first 10 lines (the file is longer)")]


def test_files_whose_turns_the_prompt_left_out_count_as_left_out():
    placement = place_files([f("1", "a.log", "A"), f("2", "b.log", "B")], room=10_000,
                            question_ts="2")
    report = placement.report(left_out=[1])
    assert report.read == ["b.log"] and report.skipped == ["a.log"]
    assert footer_lines(report, name=str) == [
        ":paperclip: Files: read b.log · left out, no room in the model's context: a.log"]


def test_no_files_no_footer():
    assert footer_lines(place_files([], room=100, question_ts="1").report(), name=str) == []


def test_an_earlier_file_that_could_not_be_read_is_told_to_the_model_but_not_again_in_the_footer():
    placement = place_files([f("1", "scan.pdf", None, reason="it is a scanned PDF"),
                             f("1", "cat.png", None, unseen=True), f("2", "a.log", "A")],
                            room=1_000, question_ts="2")
    assert [s.name for s in placement.by_ts["1"]] == ["scan.pdf", "cat.png"]
    assert footer_lines(placement.report(), name=str) == [":paperclip: Files: read a.log"]
