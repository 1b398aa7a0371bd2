"""Lenient parsing and strict validation of model answers (llm-queries.md, "Parsing and validation").

Model output is untrusted input. :func:`parse_answer` finds the JSON list of ``{"i": n, "<key>": text}``
objects even inside prose or code fences (Python-literal syntax such as single quotes or trailing commas is
read with :func:`ast.literal_eval`, which evaluates literals only). :func:`validate_items` then checks every
entry and counts each rejection under one reason (:data:`REJECTION_REASONS`, tested in that order).
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from egonlq.queries.template_writer import (
    IRREGULAR_PLURAL,
    MASS_NOUNS,
    PUT_VERBS,
    VERBS,
    head,
    is_fixed,
    is_plural,
)

REJECTION_REASONS = (
    # Whole answers, counted once per failed block (the reason of its last try):
    "parse_failure",  # no list of objects in the answer text (gibberish, truncation, 5000 nested brackets)
    "reply_not_json",  # the server's HTTP 200 body is not JSON
    "reply_malformed",  # not a chat completion, or its content is not a string (a number, a list)
    "reply_bad_usage",  # its usage field is not an object of non-negative integer token counts
    # Entries of a parsed answer:
    "malformed_item",  # an entry that is not an object with an index and a text
    "index_out_of_range",
    "index_duplicate",
    "empty",
    "no_question_mark",
    "too_short",  # fewer than MIN_WORDS words
    "too_long",  # more than MAX_WORDS words
    "contains_hash",
    "contains_timestamp",
    "copies_narration",  # the narration verbatim (raw or cleaned)
    "copies_source",  # a paraphrase containing its source sentence verbatim
    "no_content_word",  # shares no content word with its narration's block
    "fixed_object_location",  # where is a fixture or a body part ("Where is the tap?", "Where is my hand?")
    "agreement_error",  # "Where is my hands?", "How many rice?"
    "count_single_instance",  # "How many X" about a thing the block mentions once
    "self_reference",  # "Where is the plates after I took the plate?"
    "put_without_place",  # "What rice did I put?": a put question that drops the place
    "duplicate_in_video",
)
MIN_WORDS = 3
MAX_WORDS = 30
_MAX_CANDIDATES = 24  # bracket positions tried per answer: bounds the work on gibberish

_TIMESTAMP = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2})?\b|\b\d+(?:\.\d+)?\s?(?:s|secs?|seconds?|mins?|minutes?)\b", re.IGNORECASE
)
_FENCE = re.compile(r"```[a-zA-Z]*")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_HASHTAG = re.compile(r"#\w+")
_LETTERS = re.compile(r"[a-z]+")
_STOPWORDS = frozenset(
    """a an the and or but if of to in into on onto at by for from with without about above below under
    over near beside behind between through across up down out off away back again then there here this
    that these those it its it's them they their he him his she her i me my mine we our you your who
    whom whose what which when where why how many much some any all each every other another one two
    three is are was were be been being am do does did done doing have has had having can could would
    should will shall may might must not no yes so too very just also still as than while before after
    during until since last first next time place location object camera wearer leave left put see
    seen interact interacted talk talked thing things something someone did""".split()
)
# Lexicon verbs (present forms) are not content words, except those that are also common object nouns.
# Past forms are kept: narrations are in the present tense, and some double as nouns ("saw").
_NOUN_TOO = frozenset(
    "water plant paint hammer drill screw mop hand lock tie plug switch spray drink".split()
)
_VERB_FORMS = frozenset(
    w for third, (base, _) in VERBS.items() if base not in _NOUN_TOO for w in (third, base)
)
_IRREGULAR_SINGULAR = {plural: singular for singular, plural in IRREGULAR_PLURAL.items()}


@dataclass(frozen=True)
class SourceText:
    """What a generated text is checked against: its narration (raw and cleaned) or source sentence."""

    raw: str
    clean: str


def _candidates(raw: str) -> list[object]:
    """Every list literal found in ``raw``, in order of its opening bracket."""
    text = _FENCE.sub("", raw)
    starts = [m.start() for m in re.finditer(r"\[", text)][:_MAX_CANDIDATES]
    ends = [m.start() for m in re.finditer(r"\]", text)][-_MAX_CANDIDATES:]
    decoder = json.JSONDecoder()
    found: list[object] = []
    for s in starts:
        try:
            value, _ = decoder.raw_decode(text, s)
            found.append(value)
            continue
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            pass
        for e in reversed(ends):
            if e <= s:
                break
            try:
                found.append(ast.literal_eval(text[s : e + 1]))
                break
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    return found


def parse_answer(raw: str) -> list[dict] | None:
    """The first list in ``raw`` whose entries are all objects (an empty list counts), else None."""
    for value in _candidates(raw):
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
    return None


_PARAPHRASE_PREFIX = re.compile(r"^\s*(?:paraphrased\s*output|paraphrase)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"


def parse_paraphrase(text: str) -> str | None:
    """A seq2seq paraphraser's returned sequence read as plain text: the ``paraphrase:`` or
    ``paraphrasedoutput:`` label T5 paraphrasers echo and surrounding quotes removed, spaces collapsed; None
    when nothing is left. The text is then validated like any answer's."""
    text = " ".join(_PARAPHRASE_PREFIX.sub("", text, count=1).split()).strip(_QUOTES).strip()
    return text or None


def normalise_text(text: str) -> str:
    """Lower case, punctuation to spaces, spaces collapsed: the form compared for copies and duplicates."""
    return " ".join(_NON_ALNUM.sub(" ", text.lower()).split())


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if word in _IRREGULAR_SINGULAR:
        return _IRREGULAR_SINGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed words of 3+ letters that are neither function words nor lexicon verbs (approximately nouns)."""
    words = _LETTERS.findall(_HASHTAG.sub(" ", text.lower()))
    return {_stem(w) for w in words if len(w) >= 3 and w not in _STOPWORDS and w not in _VERB_FORMS}


def _copies(norm: str, source: SourceText) -> bool:
    """Whether the normalised text ``norm`` contains the source narration (clean or raw, 2+ words)."""
    for s in (source.clean, _HASHTAG.sub(" ", source.raw)):
        s = normalise_text(s)
        if len(s.split()) >= 2 and s in norm:
            return True
    return False


def validate_items(
    items: Sequence[object],
    sources: Sequence[SourceText],
    *,
    key: str,
    seen: set[str],
    require_question_mark: bool = True,
    copy_reason: str = "copies_narration",
) -> tuple[list[tuple[int, str]], Counter]:
    """Check parsed entries against their sources (1-based ``i``).

    Returns the accepted ``(row index from 0, text, last row index)`` triples and the rejections by reason.
    An entry may carry ``"to"``: the last narration (1-based, >= ``i``) its answer spans (a counting
    question); without it the answer is narration ``i`` alone.

    ``seen`` holds the normalised texts already accepted for the video and is updated (duplicate_in_video).
    Content words are taken over all ``sources`` (the whole block).
    """
    rejected: Counter = Counter()
    accepted: list[tuple[int, str, int]] = []
    used: set[int] = set()
    context = set().union(*(content_words(s.clean) for s in sources)) if sources else set()
    for item in items:
        index = item.get("i") if isinstance(item, dict) else None
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        if (
            not isinstance(item, dict)
            or not isinstance(index, int)
            or isinstance(index, bool)
            or key not in item
        ):
            rejected["malformed_item"] += 1
            continue
        last = item.get("to", index)
        if not isinstance(last, int) or isinstance(last, bool):
            rejected["malformed_item"] += 1
            continue
        if not 1 <= index <= last <= len(sources):
            rejected["index_out_of_range"] += 1
            continue
        if index in used:
            rejected["index_duplicate"] += 1
            continue
        used.add(index)
        value = item[key]
        text = " ".join(value.split()) if isinstance(value, str) else ""
        norm = normalise_text(text)
        reason = _reject_reason(
            text, norm, sources[index - 1], context, seen, require_question_mark, copy_reason
        ) or _sense_reason(norm, sources)
        if reason:
            rejected[reason] += 1
            continue
        seen.add(norm)
        accepted.append((index - 1, text, last - 1))
    return accepted, rejected


def _reject_reason(
    text: str,
    norm: str,
    source: SourceText,
    context: set[str],
    seen: set[str],
    require_question_mark: bool,
    copy_reason: str,
) -> str | None:
    n_words = len(text.split())
    if not text:
        return "empty"
    if require_question_mark and not text.endswith("?"):
        return "no_question_mark"
    if n_words < MIN_WORDS:
        return "too_short"
    if n_words > MAX_WORDS:
        return "too_long"
    if "#" in text:
        return "contains_hash"
    if _TIMESTAMP.search(text):
        return "contains_timestamp"
    if _copies(norm, source):
        return copy_reason
    if not content_words(text) & context:
        return "no_content_word"
    if norm in seen:
        return "duplicate_in_video"
    return None


_WHERE = re.compile(
    r"^(?:where (is|are|was|were) (?:the|my)|in what location did i see the) (.+?)"
    r"(?: (?:before|after) i (.+))?$"
)
_HOW_MANY = re.compile(r"^how many (.+?) (?:did|do|are|were|have|has|is) ")
_PUT_NO_PLACE = re.compile(r"^what (?:.+ )?did i (\w+)$")
_EVENT_OBJECT = re.compile(
    r"^\w+(?: up| down| on| off| out| back| away)? (?:the |my |a |an |his |her )?(.+)$"
)


def _sense_reason(norm: str, sources: Sequence[SourceText]) -> str | None:
    """Questions that are well formed but not sensible queries (the template writer's rules, checked on any
    writer's output): locations of fixed things, number agreement, counts of a single instance,
    self-referential before/after pairs, put questions without their place."""
    m = _WHERE.match(norm)
    if m:
        verb, subject, event = m.groups()
        if is_fixed(subject):
            return "fixed_object_location"
        if verb is not None and (verb in ("are", "were")) != is_plural(subject):
            return "agreement_error"
        if event:
            e = _EVENT_OBJECT.match(event)
            if e and _stem(head(subject)) == _stem(head(e.group(1))):
                return "self_reference"
    m = _HOW_MANY.match(norm)
    if m:
        thing = m.group(1)
        if head(thing) in MASS_NOUNS or not is_plural(thing):
            return "agreement_error"
        stem = _stem(head(thing))
        if sum(stem in content_words(s.clean) for s in sources) < 2:
            return "count_single_instance"
    m = _PUT_NO_PLACE.match(norm)
    if m and m.group(1) in PUT_VERBS:
        return "put_without_place"
    return None
