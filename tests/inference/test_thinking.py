"""Telling MedGemma's thinking trace from its answer, whole or streamed in any chunking."""

from __future__ import annotations

import random

import pytest

from inference.thinking import THOUGHT_END, THOUGHT_START, ThoughtSplitter, split_trace

TRACED = f"{THOUGHT_START}thought\nFever and cough for 3 days.{THOUGHT_END}Likely pneumonia."

# Whole texts and the (thinking, answer) each must give, however it streams in.
CASES = {
    "thought then answer": (TRACED, ("Fever and cough for 3 days.", "Likely pneumonia.")),
    "no markers": (
        "Plain answer: 2 < 3 and <b> is text.",
        ("", "Plain answer: 2 < 3 and <b> is text."),
    ),
    "marker look-alikes": (
        "a <unused9 b <unused95> c <unused94x d",
        ("", "a <unused9 b <unused95> c <unused94x d"),
    ),
    "ends on a partial marker": ("answer <unused9", ("", "answer <unused9")),
    "unterminated thought": (
        f"{THOUGHT_START}thought\nStill weighing sepsis",
        ("Still weighing sepsis", ""),
    ),
    "text before the thought": (
        f"Preamble {THOUGHT_START}thought\nreasoning{THOUGHT_END} answer",
        ("reasoning", "Preamble  answer"),
    ),
    "empty thought": (f"{THOUGHT_START}{THOUGHT_END}Answer only.", ("", "Answer only.")),
    "label only": (f"{THOUGHT_START}thought\n{THOUGHT_END}Answer.", ("", "Answer.")),
    "angle bracket before marker": (
        f"x<{THOUGHT_START}thought\n<y>{THOUGHT_END}<z",
        ("<y>", "x<<z"),
    ),
    "label word inside the thought": (
        f"{THOUGHT_START}thought\nthought\nagain{THOUGHT_END}ok",
        ("thought\nagain", "ok"),
    ),
    "two thoughts": (
        f"{THOUGHT_START}thought\none{THOUGHT_END}A{THOUGHT_START}thought\ntwo{THOUGHT_END}B",
        ("onetwo", "AB"),
    ),
    "unicode": (
        f"{THOUGHT_START}thought\nΔ ≥ 5 mmHg → ü{THOUGHT_END}Blutdruck ↑ 🙂",
        ("Δ ≥ 5 mmHg → ü", "Blutdruck ↑ 🙂"),
    ),
}


def _chunks_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _random_chunks(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    chunks, start = [], 0
    while start < len(text):
        size = rng.choice([0, 1, 1, 2, 3, 4, 5, 9, 10, 11, 17])
        chunks.append(text[start : start + size])
        start += size
    return chunks


def _streamed(chunks: list[str]) -> tuple[str, str]:
    splitter = ThoughtSplitter()
    parts: dict[str, list[str]] = {"thinking": [], "answer": []}
    for chunk in chunks:
        for kind, piece in splitter.feed(chunk):
            assert piece, "the splitter must not yield empty pieces"
            parts[kind].append(piece)
    for kind, piece in splitter.flush():
        parts[kind].append(piece)
    return "".join(parts["thinking"]), "".join(parts["answer"])


@pytest.mark.parametrize("case", CASES)
def test_split_trace_separates_thinking_from_answer(case):
    text, expected = CASES[case]

    assert split_trace(text) == expected


@pytest.mark.parametrize("case", CASES)
def test_one_character_at_a_time_gives_the_same_split(case):
    text, expected = CASES[case]

    assert _streamed(list(text)) == expected


@pytest.mark.parametrize("size", [2, 3, 5, 7, 9, 10, 11, 13, 64])
@pytest.mark.parametrize("case", CASES)
def test_fixed_size_chunks_give_the_same_split(case, size):
    text, expected = CASES[case]

    assert _streamed(_chunks_of(text, size)) == expected


@pytest.mark.parametrize("case", CASES)
def test_random_chunkings_give_the_same_split(case):
    text, _ = CASES[case]
    whole = split_trace(text)

    for seed in range(40):
        chunks = _random_chunks(text, seed)
        assert "".join(chunks) == text
        assert _streamed(chunks) == whole, f"seed {seed}: {chunks!r}"


@pytest.mark.parametrize("cut", range(1, len(THOUGHT_START)))
def test_start_marker_split_across_two_chunks_is_recognised(cut):
    first = "Answer " + THOUGHT_START[:cut]
    second = THOUGHT_START[cut:] + "thought\nreason" + THOUGHT_END + " done"

    assert _streamed([first, second]) == ("reason", "Answer  done")


@pytest.mark.parametrize("cut", range(1, len(THOUGHT_END)))
def test_end_marker_split_across_two_chunks_is_recognised(cut):
    first = THOUGHT_START + "thought\nreason" + THOUGHT_END[:cut]
    second = THOUGHT_END[cut:] + "answer"

    assert _streamed([first, second]) == ("reason", "answer")


def test_partial_marker_is_held_back_until_it_is_decided():
    splitter = ThoughtSplitter()

    assert list(splitter.feed("Dose: 5 mg <unus")) == [("answer", "Dose: 5 mg ")]
    assert list(splitter.feed("ual")) == [("answer", "<unusual")]


def test_thought_label_is_removed_even_when_it_arrives_in_pieces():
    splitter = ThoughtSplitter()
    pieces = [
        *splitter.feed(THOUGHT_START + "tho"),
        *splitter.feed("ught"),
        *splitter.feed("\nreal reasoning"),
    ]

    assert pieces == [("thinking", "real reasoning")]


def test_text_without_markers_is_all_answer():
    text = "No trace here, just an answer with <tags> and unused94 words."

    assert split_trace(text) == ("", text)
    assert _streamed(list(text)) == ("", text)


def test_unterminated_thought_is_all_thinking():
    text = f"{THOUGHT_START}thought\nThe stream was cut off <unused9"

    assert split_trace(text) == ("The stream was cut off <unused9", "")


def test_flush_emits_the_held_back_tail_once():
    splitter = ThoughtSplitter()
    list(splitter.feed("end <unused9"))

    assert list(splitter.flush()) == [("answer", "<unused9")]
    assert list(splitter.flush()) == []


def test_thought_without_label_keeps_its_first_letters_when_streamed():
    text = f"{THOUGHT_START}the patient is febrile{THOUGHT_END}Answer."

    assert split_trace(text) == ("the patient is febrile", "Answer.")
    assert _streamed(list(text)) == split_trace(text)
