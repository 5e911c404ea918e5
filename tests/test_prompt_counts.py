"""build_prompt priced with Qwen's exact tokenizer: the stored per-message counts are what it adds up,
mentions are counted again, and the price never falls below what a QwQ server counts of the prompt
(tests/fakes/chatml.py renders the template and counts the whole, independently)."""

from __future__ import annotations

import random
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from qwqbot.conversation import MessageTooLongError, Place, Turn, build_prompt
from qwqbot.tokens import QWEN25, message_tokens
from tests.fakes import chatml

NAMES = {"U1": "Alice", "U2": "Bob", "U0123ABCDE": "Carol Christensen-Montgomery"}
BOT = "UBOT"
NONCE = "7f3a9c1e5b2d4f60"


def stored(author: str, text: str, n: int, *, me: bool = False) -> Turn:
    """A turn as ContextBuilder makes it from a stored row: with the store's count."""
    return Turn(author=author, text=text, from_self=me, ts=f"1700000000.{n:06d}", tokens=message_tokens(text))


def build(turns: list[Turn], budget: int) -> tuple[int, int, list[dict[str, str]]]:
    prompt = build_prompt(turns, names=NAMES, bot_user_id=BOT, system_prompt="You are qwqbot.",
                          today=date(2026, 11, 30), place=Place("channel", "general"), budget_tokens=budget,
                          nonce=NONCE, counter=QWEN25)
    return prompt.estimated_tokens, prompt.included, prompt.messages


def numbers(rng: random.Random) -> str:
    """A message of the kind Qwen's tokenizer makes the most tokens of: ids, ts values, figures."""
    kind = rng.randrange(4)
    if kind == 0:
        return "\n".join(f"{rng.randrange(10**6)},{rng.random() * 1000:.3f},{rng.randrange(10**9):09d}"
                         for _ in range(rng.randrange(1, 12)))
    if kind == 1:
        return " ".join(f"req={rng.getrandbits(64):016x}" for _ in range(rng.randrange(1, 10)))
    if kind == 2:
        return (f"<@U0123ABCDE> see <https://acme.slack.com/archives/C0{rng.randrange(10**7):07d}/"
                f"p{rng.randrange(10**16):016d}|this> at "
                f"17000{rng.randrange(10**5):05d}.{rng.randrange(10**6):06d}")
    return (f"ticket {rng.randrange(10**5)} costs ${rng.random() * 10**6:,.2f} &amp; took "
            f"{rng.randrange(999)} ms")


def test_stored_counts_are_what_the_price_adds_up():
    plain = stored("Alice", "the deploy failed twice", 1)
    honest = build([plain], 10_000)[0]
    # A stored count is trusted as it is: a different figure changes the price by the difference.
    inflated = Turn(plain.author, plain.text, plain.from_self, plain.ts, tokens=(plain.tokens or 0) + 500)
    assert build([inflated], 10_000)[0] == honest + 500


def test_a_mention_is_counted_again_with_the_name_it_shows():
    text = "<@U0123ABCDE> can you check 1700000000.000100?"
    wrong = Turn("Alice", text, False, "1700000000.000001", tokens=1)  # a stored count that cannot be right
    tokens, _, messages = build([wrong], 10_000)
    assert "@Carol Christensen-Montgomery can you check" in messages[-1]["content"]
    # counted afresh: the bogus 1 played no part
    assert tokens == build([Turn("Alice", text, False, "1700000000.000001", tokens=None)], 10_000)[0]
    assert chatml.prompt_tokens(messages) <= tokens <= chatml.prompt_tokens(messages) + 2


def test_a_question_to_the_bot_keeps_its_stored_count():
    text = "<@UBOT> what is 17 + 25?"
    asked = stored("Alice", text, 1)
    honest, _, messages = build([asked], 10_000)
    assert messages[-1]["content"].endswith("\nwhat is 17 + 25?\n<<end 7f3a9c1e5b2d4f60>>")
    trusted = Turn(asked.author, text, False, asked.ts, tokens=(asked.tokens or 0) + 100)
    assert build([trusted], 10_000)[0] == honest + 100  # no counting again for the bot's own mention


def test_the_bots_answer_with_a_think_block_is_counted_as_sent():
    text = "Done.<think>hidden musing that never reaches the model</think> See above."
    turn = Turn("qwqbot", text, True, "1700000000.000001", tokens=message_tokens(text))
    ask = stored("Alice", "thanks, and then?", 2)
    tokens, _, messages = build([turn, ask], 10_000)
    assert "hidden musing" not in str(messages)
    assert tokens >= chatml.prompt_tokens(messages)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(300, 6000))
def test_the_price_never_undercounts_what_the_server_counts(seed, budget):
    rng = random.Random(seed)
    turns = []
    for n in range(rng.randrange(1, 80)):
        if n % 3 == 2:
            turns.append(stored("qwqbot", numbers(rng) + " is the total.", n, me=True))
        else:
            turns.append(stored(rng.choice(["Alice", "Bob"]), numbers(rng), n))
    turns.append(stored("Bob", "<@UBOT> what is the sum of these?", 999))
    try:
        tokens, included, messages = build(turns, budget)
    except MessageTooLongError:
        return
    server = chatml.prompt_tokens(messages)
    assert server <= tokens <= budget  # within the budget by the server's own count
    assert tokens - server <= 3 * len(messages)  # and exact but for a merge or two at the joins
    assert included >= 1


def test_a_thread_of_numbers_far_larger_than_the_window_fits_it():
    rng = random.Random(14)
    turns = [stored("Alice", numbers(rng), n) for n in range(3000)]
    turns.append(stored("Bob", "<@UBOT> which of these changed most?", 3000))
    window, max_tokens = 32_768, 8_192
    total = sum(chatml.count(t.text) for t in turns)
    assert total > 3 * window  # far more than fits
    tokens, included, messages = build(turns, window - max_tokens)
    assert chatml.prompt_tokens(messages) <= tokens <= window - max_tokens
    assert 10 < included < 3001
    assert messages[-1]["content"].endswith(f"which of these changed most?\n<<end {NONCE}>>")
