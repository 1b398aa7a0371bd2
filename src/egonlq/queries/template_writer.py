"""The rule-based question writer behind the ``template`` backend (llm-queries.md, "Backends").

A narration (``text_clean`` form: "The camera wearer picks a knife from the table", "Man X opens the fridge")
is parsed with a small general lexicon into actor, verb, object and place, then turned into ONE question in
one of the official NLQ template styles. Which template is chosen among those that fit the narration is
decided by a hash of (seed, narration time, narration text), so the output is varied yet deterministic.
Neighbouring narrations of the block supply the event of "before / after" questions and resolve "it".

Paraphrasing (:func:`paraphrase`) is rule-based too: template-specific rewordings, verb synonyms and, for
narrations, moving the place phrase to the front.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# The official templates (ego4d-formats.md 2.3), verbatim.
T_BEFORE_AFTER = "Objects: Where is object X before / after event Y?"
T_PUT = "Place: Where did I put X?"
T_PUT_IN = "Objects: What did I put in X?"
T_WHERE = "Objects: Where is object X?"
T_WHAT_DID = "Objects: What X did I Y?"
T_WHAT_IS = "Objects: What X is Y?"
T_HOW_MANY = "Objects: How many X’s? (quantity question)"
T_SEE = "Objects: In what location did I see object X ?"
T_STATE = "Objects: State of an object"
T_WHO_ACTIVITY = "People: Who did I interact with when I did activity X?"
T_WHO_TALK = "People: Who did I talk to in location X?"
T_WHERE_MY = "Objects: Where is my object X?"
T_WHEN_ROLE = "People: When did I talk to or interact with person with role X?"
TEMPLATES = (
    T_BEFORE_AFTER,
    T_PUT,
    T_PUT_IN,
    T_WHERE,
    T_WHAT_DID,
    T_WHAT_IS,
    T_HOW_MANY,
    T_SEE,
    T_STATE,
    T_WHO_ACTIVITY,
    T_WHO_TALK,
    T_WHERE_MY,
    T_WHEN_ROLE,
)
WRITER_VERSION = "1"  # bump when the writer's output changes: it is part of the backend fingerprint

# 3rd-person form -> (base, past). Unknown verbs fall back on regular morphology.
_VERB_LIST = """
picks pick picked | puts put put | places place placed | opens open opened | closes close closed
cuts cut cut | washes wash washed | pours pour poured | takes take took | holds hold held
drops drop dropped | turns turn turned | moves move moved | wipes wipe wiped | stirs stir stirred
rinses rinse rinsed | dries dry dried | fills fill filled | empties empty emptied
throws throw threw | carries carry carried | lifts lift lifted | grabs grab grabbed
adjusts adjust adjusted | touches touch touched | removes remove removed | looks look looked
walks walk walked | talks talk talked | speaks speak spoke | gives give gave | hands hand handed
folds fold folded | cleans clean cleaned | scrubs scrub scrubbed | chops chop chopped
slices slice sliced | peels peel peeled | mixes mix mixed | adds add added | fixes fix fixed
keeps keep kept | leaves leave left | brings bring brought | uses use used | checks check checked
sets set set | hangs hang hung | plugs plug plugged | unplugs unplug unplugged
presses press pressed | switches switch switched | cooks cook cooked | eats eat ate
drinks drink drank | reads read read | writes write wrote | sweeps sweep swept | shakes shake shook
spreads spread spread | squeezes squeeze squeezed | pulls pull pulled | pushes push pushed
rubs rub rubbed | dips dip dipped | arranges arrange arranged | paints paint painted
drills drill drilled | hammers hammer hammered | screws screw screwed | ties tie tied
locks lock locked | unlocks unlock unlocked | plays play played | kneads knead kneaded
rolls roll rolled | flips flip flipped | fries fry fried | boils boil boiled | heats heat heated
serves serve served | scoops scoop scooped | stacks stack stacked | sorts sort sorted
searches search searched | packs pack packed | unpacks unpack unpacked | wears wear wore
inspects inspect inspected | counts count counted | waters water watered | plants plant planted
digs dig dug | mops mop mopped | types type typed | buys buy bought | sees see saw
catches catch caught | measures measure measured | sharpens sharpen sharpened
operates operate operated | stores store stored | returns return returned | lowers lower lowered
raises raise raised | collects collect collected | sprays spray sprayed | tears tear tore
breaks break broke | gets get got | sits sit sat | stands stand stood | points point pointed
shows show showed | passes pass passed
"""
VERBS: dict[str, tuple[str, str]] = {
    third: (base, past)
    for third, base, past in (item.split() for item in re.split(r"[|\n]", _VERB_LIST) if item.strip())
}
_PHRASAL = {
    tuple(pair.split())
    for pair in (
        "pick up|put down|put back|put away|turn on|turn off|switch on|switch off|take out|take off|look at|"
        "throw away|fill up|clean up|set down"
    ).split("|")
}
PUT_VERBS = frozenset("put place keep leave set drop hang store return throw".split())
STATE_OF = {("open", ""): "open", ("close", ""): "closed", ("turn", "on"): "on", ("turn", "off"): "off",
            ("switch", "on"): "on", ("switch", "off"): "off"}  # fmt: skip
PLACE_PREPS = ("from", "into", "in", "onto", "on", "inside", "to", "at", "under", "near", "beside", "over")
# Words that end an object phrase: prepositions, stray particles ("stands up"), conjunctions.
_STOP = set(PLACE_PREPS) | set("with by towards off out through across behind for while using".split())
_STOP |= set("and then up down around away back ,".split())
_DETERMINERS = frozenset("a an the some his her their its my your this that these those another one".split())
_PRONOUNS = frozenset("it them him her something things itself".split())
_IN_PLACES = frozenset(
    """drawer fridge sink box bag cabinet cupboard bowl pot basket bin oven pan bucket container jar microwave
    freezer dishwasher closet room kitchen garage garden car pocket trash tray cup mug glass""".split()
)
IRREGULAR_PLURAL = dict(
    pair.split(":")
    for pair in """knife:knives leaf:leaves shelf:shelves loaf:loaves half:halves person:people man:men
    woman:women child:children foot:feet mouse:mice tooth:teeth wife:wives scarf:scarves""".split()
)
_CAMERA = ("the", "camera", "wearer")


@dataclass(frozen=True)
class Parsed:
    """A narration reduced to what a question needs."""

    actor: str  # "C" (camera wearer) or "O"
    role: str | None  # the other person's noun for "O" ("man"), else None
    verb: str  # base form, particle included ("pick up")
    past: str  # past form, particle included ("picked up")
    obj: str | None  # object phrase without determiner ("knife", "bag of clothes")
    prep: str | None  # preposition of the place
    place: str | None  # place phrase without determiner ("table")


def _verb_forms(word: str) -> tuple[str, str]:
    if word in VERBS:
        return VERBS[word]
    if word.endswith("ies"):
        base = word[:-3] + "y"
    elif word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        base = word[:-2]
    elif word.endswith("s"):
        base = word[:-1]
    else:
        base = word
    if base.endswith("e"):
        past = base + "d"
    elif base.endswith("y") and len(base) > 1 and base[-2] not in "aeiou":
        past = base[:-1] + "ied"
    else:
        past = base + "ed"
    return base, past


def pluralise(phrase: str) -> str:
    """Plural of a noun phrase: its head noun (the word before "of", else the last) takes the plural."""
    words = phrase.split()
    head = words.index("of") - 1 if "of" in words[1:] else len(words) - 1
    w = words[head]
    if w in IRREGULAR_PLURAL:
        w = IRREGULAR_PLURAL[w]
    elif w.endswith("s") and not w.endswith("ss"):
        pass
    elif w.endswith(("s", "x", "z", "ch", "sh")):
        w += "es"
    elif w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        w = w[:-1] + "ies"
    else:
        w += "s"
    words[head] = w
    return " ".join(words)


def _strip_phrase(tokens: list[str]) -> str | None:
    """Drop "the camera wearer" and leading determiners; None for nothing left or a bare pronoun."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tuple(tokens[i : i + 3]) == _CAMERA:
            i += 3
            continue
        out.append(tokens[i])
        i += 1
    while out and out[0] in _DETERMINERS:
        out.pop(0)
    if not out or (len(out) == 1 and out[0] in _PRONOUNS):
        return None
    return " ".join(out)


def parse_narration(text_clean: str) -> Parsed | None:
    """Parse a cleaned narration; None when no verb can be found."""
    tokens = re.findall(r"[a-z0-9][a-z0-9'’-]*|,", text_clean.lower())
    if tuple(tokens[:3]) == _CAMERA:
        actor, subject_end = "C", 3
    else:
        actor, subject_end = "O", 1
    verb_at = next((i for i in range(subject_end, len(tokens)) if tokens[i] in VERBS), None)
    if verb_at is None:
        verb_at = next(
            (i for i in range(subject_end, len(tokens)) if len(tokens[i]) > 2 and tokens[i].endswith("s")),
            None,
        )
    if verb_at is None:
        return None
    role = None
    if actor == "O":
        role = next((t for t in tokens[:verb_at] if t not in _DETERMINERS and len(t) > 1), None)
    base, past = _verb_forms(tokens[verb_at])
    rest = tokens[verb_at + 1 :]
    particle = ""
    if rest and (base, rest[0]) in _PHRASAL:
        particle, rest = rest[0], rest[1:]
    end = next((i for i, t in enumerate(rest) if t in _STOP), len(rest))
    obj = _strip_phrase(rest[:end])
    prep = place = None
    for i in range(end, len(rest)):
        if rest[i] in PLACE_PREPS:
            stop = next((j for j in range(i + 1, len(rest)) if rest[j] in _STOP), len(rest))
            place = _strip_phrase(rest[i + 1 : stop])
            if place is not None:
                prep = rest[i]
                break
    if particle:
        base, past = f"{base} {particle}", f"{past} {particle}"
    return Parsed(actor, role, base, past, obj, prep, place)


def _key_hash(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).hexdigest()[:12], 16)


def _in_or_on(prep: str | None, place: str) -> str:
    if prep in ("in", "into", "inside"):
        return "in"
    if prep in ("on", "onto"):
        return "on"
    return "in" if place.split()[-1] in _IN_PLACES else "on"


def candidate_questions(p: Parsed, before: Parsed | None, after: Parsed | None) -> list[tuple[str, str]]:
    """Every (template, question) that fits the narration; ``before``/``after`` are its block neighbours."""
    out: list[tuple[str, str]] = []
    if p.actor == "O":
        activity = f"{p.past} the {p.obj}" if p.obj else None
        if activity:
            out.append((T_WHO_ACTIVITY, f"Who did I interact with when I {activity}?"))
        if p.place:
            where = "in" if _in_or_on(p.prep, p.place) == "in" else "at"
            out.append((T_WHO_TALK, f"Who did I talk to {where} the {p.place}?"))
        if p.role:
            out.append((T_WHEN_ROLE, f"When did I interact with the {p.role}?"))
        if p.obj:
            out.append((T_SEE, f"In what location did I see the {p.obj} ?"))
        return out
    if p.obj is None:
        return out
    out += [
        (T_WHERE, f"Where is the {p.obj}?"),
        (T_WHERE_MY, f"Where is my {p.obj}?"),
        (T_SEE, f"In what location did I see the {p.obj} ?"),
        (T_WHAT_DID, f"What {p.obj} did I {p.verb}?"),
        (T_HOW_MANY, f"How many {pluralise(p.obj)} did I {p.verb}?"),
    ]
    if p.place:
        out.append((T_WHAT_IS, f"What {p.obj} is {_in_or_on(p.prep, p.place)} the {p.place}?"))
    base = p.verb.split()[0]
    if base in PUT_VERBS:
        out.append((T_PUT, f"Where did I put the {p.obj}?"))
        if p.place and p.prep in ("in", "into", "inside", "on", "onto"):
            out.append((T_PUT_IN, f"What did I put {_in_or_on(p.prep, p.place)} the {p.place}?"))
    state = STATE_OF.get((base, p.verb.split()[1] if " " in p.verb else ""))
    if state:
        out.append((T_STATE, f"Did I leave the {p.obj} {state}?"))
    for word, other in (("before", after), ("after", before)):
        if other is not None and other.actor == "C" and other.obj and other.obj != p.obj:
            out.append((T_BEFORE_AFTER, f"Where is the {p.obj} {word} I {other.past} the {other.obj}?"))
    return out


def write_block_questions(items: list[tuple[str | None, str]], *, seed: int) -> list[tuple[int, str, str]]:
    """One question per narration of a block (``(time, text_clean)`` items) where one fits.

    Returns ``(index from 1, template, question)``; a pronoun object ("it") takes the previous narration's.
    """
    parsed: list[Parsed | None] = []
    for _, text in items:
        p = parse_narration(text)
        if p is not None and p.obj is None and parsed and parsed[-1] is not None and _mentions_pronoun(text):
            p = Parsed(p.actor, p.role, p.verb, p.past, parsed[-1].obj, p.prep, p.place)
        parsed.append(p)
    out = []
    for i, ((time, text), p) in enumerate(zip(items, parsed, strict=True)):
        if p is None:
            continue
        before = parsed[i - 1] if i > 0 else None
        after = parsed[i + 1] if i + 1 < len(parsed) else None
        candidates = candidate_questions(p, before, after)
        if candidates:
            template, question = candidates[_key_hash(seed, time, text) % len(candidates)]
            out.append((i + 1, template, question))
    return out


def _mentions_pronoun(text: str) -> bool:
    return bool(re.search(r"\b(it|them)\b", text.lower()))


# Paraphrase rules: a question form and its rewordings ({1}, {2} are the regex groups).
_QUESTION_REWRITES = [
    (r"^Where did I put the (.+)\?$", ["Where did I place the {1}?", "Where did I leave the {1}?"]),
    (r"^Where is the (.+) (before|after) I (.+)\?$", ["Where was the {1} {2} I {3}?"]),
    (r"^Where is the (.+)\?$", ["Where was the {1}?", "Where can I find the {1}?"]),
    (r"^Where is my (.+)\?$", ["Where did I leave my {1}?", "Where was my {1}?"]),
    (
        r"^In what location did I see the (.+?) ?\?$",
        ["Where did I see the {1}?", "Where did I last see the {1}?"],
    ),
    (
        r"^How many (.+) did I (.+)\?$",
        ["What number of {1} did I {2}?"],
    ),
    (
        r"^What did I put (in|on) the (.+)\?$",
        ["What did I place {1} the {2}?", "What did I leave {1} the {2}?"],
    ),
    (r"^What (.+) did I (.+)\?$", ["Which {1} did I {2}?"]),
    (r"^What (.+) is (in|on) the (.+)\?$", ["Which {1} is {2} the {3}?", "What {1} was {2} the {3}?"]),
    (r"^Did I leave the (.+) (open|closed|on|off)\?$", ["Was the {1} left {2}?", "Is the {1} {2}?"]),
    (
        r"^Who did I interact with when I (.+)\?$",
        ["Who was with me when I {1}?", "Whom did I meet when I {1}?"],
    ),
    (r"^Who did I talk to (in|on|at) the (.+)\?$", ["Who did I speak with {1} the {2}?"]),
    (r"^When did I interact with the (.+)\?$", ["When did I talk to the {1}?", "When did I meet the {1}?"]),
]
_SYNONYMS = {
    "picks up": "lifts",
    "picks": "takes",
    "puts down": "sets down",
    "puts": "places",
    "places": "puts",
    "takes": "grabs",
    "grabs": "takes",
    "holds": "grips",
    "cuts": "slices",
    "slices": "cuts",
    "chops": "cuts",
    "washes": "rinses",
    "rinses": "washes",
    "wipes": "cleans",
    "turns on": "switches on",
    "turns off": "switches off",
    "drops": "lets go of",
    "carries": "brings",
    "moves": "shifts",
}
_NARRATION_REORDER = re.compile(
    r"^(the camera wearer|.+?) (\w+(?: up| down| on| off)?) (.+?) (from|into|in|onto|on|to|at) (.+)$", re.I
)  # noqa: E501


def _case(text: str) -> str:
    return text[:1].upper() + text[1:]


def paraphrase_candidates(text: str) -> list[str]:
    """Every rule-based paraphrase of a question or narration sentence (none equal to it)."""
    out: list[str] = []
    for pattern, forms in _QUESTION_REWRITES:
        m = re.match(pattern, text)
        if m:
            out += [f.format(None, *m.groups()) for f in forms]
            break
    for word, synonym in _SYNONYMS.items():
        swapped = re.sub(rf"\b{word}\b", synonym, text, count=1)
        if swapped != text:
            out.append(swapped)
            break
    if not text.endswith("?"):
        m = _NARRATION_REORDER.match(text)
        if m:
            subject, verb, obj, prep, place = m.groups()
            out.append(_case(f"{prep} {place}, {subject.lower()} {verb} {obj}"))
    seen: list[str] = []
    for c in out:
        if c != text and c not in seen:
            seen.append(c)
    return seen


def paraphrase(text: str, *, seed: int, variant: int = 1) -> str | None:
    """A deterministic paraphrase chosen by hash of (seed, text, variant); None when no rule applies."""
    candidates = paraphrase_candidates(text)
    if not candidates:
        return None
    return candidates[_key_hash(seed, text, variant) % len(candidates)]
