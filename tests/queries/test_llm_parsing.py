"""Lenient parsing of model answers and strict validation with rejection counts by reason."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egonlq.queries.llm_parsing import (
    REJECTION_REASONS,
    SourceText,
    content_words,
    parse_answer,
    validate_items,
)

SOURCES = [
    SourceText("#C C picks a knife from the drawer", "The camera wearer picks a knife from the drawer"),
    SourceText("#C C cuts the onion on the board", "The camera wearer cuts the onion on the board"),
    SourceText("#O man X opens the fridge", "Man X opens the fridge"),
]


def test_plain_json() -> None:
    assert parse_answer('[{"i": 1, "question": "Where is the knife?"}]') == [
        {"i": 1, "question": "Where is the knife?"}
    ]
    assert parse_answer("[]") == []


def test_fenced_json_and_prose_around() -> None:
    raw = 'Sure! Here they are:\n```json\n[{"i": 2, "question": "What did I cut?"}]\n```\nHope it helps [1].'
    assert parse_answer(raw) == [{"i": 2, "question": "What did I cut?"}]
    raw = 'Index [1] is skipped. Answer: [{"i": 1, "question": "Where is the knife?"}] and more text.'
    assert parse_answer(raw) == [{"i": 1, "question": "Where is the knife?"}]


def test_single_quotes_and_trailing_commas() -> None:
    raw = "[{'i': 1, 'question': 'Where is the knife?'}, {'i': 3, 'question': 'Who opened the fridge?'},]"
    assert parse_answer(raw) == [
        {"i": 1, "question": "Where is the knife?"},
        {"i": 3, "question": "Who opened the fridge?"},
    ]


@pytest.mark.parametrize(
    "raw",
    [
        '[{"i": 1, "question": "Where is the kni',  # truncated (max_new_tokens hit)
        "I cannot help with that.",
        "",
        "[1, 2, 3]",  # a list, but not of objects
        "{'i': 1}",  # an object, not a list
        "[[[[ x ]]] ]] {{ garbage ¤ \x00",
        "__import__('os').system('true')",  # never evaluated: not a literal
        "[" * 5000,  # deeper than the JSON decoder's recursion: RecursionError before the fix
        "[" * 5000 + "]" * 5000,
        '[{"i": 1, "question": ' + "[" * 3000 + "}]",
    ],
)
def test_unparseable_answers(raw: str) -> None:
    assert parse_answer(raw) is None


def _validate(items: list, seen: set[str] | None = None) -> tuple[list, Counter]:
    return validate_items(items, SOURCES, key="question", seen=set() if seen is None else seen)


def test_accepts_good_questions() -> None:
    accepted, rejected = _validate([
        {"i": 1, "question": "Where did I put the knife?"},
        {"i": "2", "question": "  What did I   cut on the board?"},
        {"i": 3, "question": "Who did I interact with when I opened the fridge?"},
    ])  # fmt: skip
    assert accepted == [
        (0, "Where did I put the knife?", 0),
        (1, "What did I cut on the board?", 1),
        (2, "Who did I interact with when I opened the fridge?", 2),
    ]
    assert sum(rejected.values()) == 0


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"question": "Where is the knife?"}, "malformed_item"),
        ({"i": 1.5, "question": "Where is the knife?"}, "malformed_item"),
        ({"i": True, "question": "Where is the knife?"}, "malformed_item"),
        ({"i": 1}, "malformed_item"),
        ({"i": 0, "question": "Where is the knife?"}, "index_out_of_range"),
        ({"i": 4, "question": "Where is the knife?"}, "index_out_of_range"),
        ({"i": 1, "question": "   "}, "empty"),
        ({"i": 1, "question": None}, "empty"),
        ({"i": 1, "question": "Where is the knife"}, "no_question_mark"),
        ({"i": 1, "question": "Knife where?"}, "too_short"),
        ({"i": 1, "question": " ".join(["knife"] * 31) + "?"}, "too_long"),
        ({"i": 1, "question": "Where is the #C knife?"}, "contains_hash"),
        ({"i": 1, "question": "Where was the knife at 01:23?"}, "contains_timestamp"),
        ({"i": 1, "question": "Where was the knife 5 seconds ago?"}, "contains_timestamp"),
        ({"i": 1, "question": "Why did C picks a knife from the drawer?"}, "copies_narration"),
        ({"i": 1, "question": "The camera wearer picks a knife from the drawer?"}, "copies_narration"),
        ({"i": 1, "question": "What did I do there?"}, "no_content_word"),
        ({"i": 1, "question": "What did I pick up?"}, "no_content_word"),  # a verb is not a content word
    ],
)
def test_each_rejection_reason(item: dict, reason: str) -> None:
    accepted, rejected = _validate([item])
    assert accepted == []
    assert rejected == Counter({reason: 1})
    assert reason in REJECTION_REASONS


def test_content_word_may_come_from_the_block() -> None:
    accepted, _ = _validate([{"i": 1, "question": "Where is the onion before I take the knife?"}])
    assert accepted and content_words("Where are the knives?") == {"knife"}


def test_repeated_indices_and_duplicates_in_video() -> None:
    seen = {"where is the onion"}
    accepted, rejected = _validate(
        [
            {"i": 1, "question": "Where is the knife?"},
            {"i": 1, "question": "Where did I put the knife?"},
            {"i": 2, "question": "Where is the ONION?"},  # already accepted in this video
            {"i": 3, "question": "where is the knife ?"},  # same as the first once normalised
        ],
        seen,
    )
    assert accepted == [(0, "Where is the knife?", 0)]
    assert rejected == Counter({"index_duplicate": 1, "duplicate_in_video": 2})
    assert seen == {"where is the onion", "where is the knife"}


def test_paraphrase_mode() -> None:
    sources = [SourceText("The camera wearer picks a knife", "The camera wearer picks a knife")]
    accepted, rejected = validate_items(
        [{"i": 1, "text": "The camera wearer picks a knife"}], sources, key="text", seen=set(),
        require_question_mark=False, copy_reason="copies_source",
    )  # fmt: skip
    assert accepted == [] and rejected == Counter({"copies_source": 1})
    accepted, _ = validate_items(
        [{"i": 1, "text": "The camera wearer grabs a knife"}], sources, key="text", seen=set(),
        require_question_mark=False,
    )  # fmt: skip
    assert accepted == [(0, "The camera wearer grabs a knife", 0)]


_NOISE = st.text(st.characters(blacklist_characters="[]{}`"), max_size=40)  # prose without brackets
_ITEMS = st.lists(
    st.fixed_dictionaries(
        {
            "i": st.one_of(st.integers(-1, 5), st.sampled_from(["1", "2", " 3", "x"]), st.booleans()),
            "question": st.one_of(
                st.text(st.characters(blacklist_characters="`"), max_size=60),
                st.sampled_from(["Where is the knife?", "What did I cut on the board?", "Who opened it?"]),
                st.none(),
                st.integers(),
            ),
        }
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(_ITEMS, _NOISE, _NOISE, st.sampled_from(["json", "python", "fenced"]))
def test_payload_in_noise_is_found_and_every_entry_counted(
    items: list[dict], before: str, after: str, form: str
) -> None:
    body = repr(items) if form == "python" else json.dumps(items)
    if form == "fenced":
        body = f"```json\n{body}\n```"
    parsed = parse_answer(f"{before}{body}{after}")
    assert parsed == items
    seen: set[str] = set()
    accepted, rejected = _validate(parsed, seen)
    assert len(accepted) + sum(rejected.values()) == len(items)
    assert set(rejected) <= set(REJECTION_REASONS)
    assert len(seen) == len(accepted)  # every accepted question is distinct in the video
    for row, text, last in accepted:
        assert last == row
        assert 0 <= row < len(SOURCES) and text.endswith("?") and "#" not in text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_to_a_list_of_objects_or_none(raw: str) -> None:
    parsed = parse_answer(raw)
    assert parsed is None or (isinstance(parsed, list) and all(isinstance(v, dict) for v in parsed))
