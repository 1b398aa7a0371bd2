"""The demo world's vocabulary: the words its events are made of and the sentences that speak about them.

Objects (with a domain and a category: which verbs apply, the X of "What X did I Y?"), places (with a domain
and a preposition), verbs (with third-person and past forms), people, the 13 official NLQ templates, and the
Ego4D-style narration sentences and EgoClip tags built from them. Everything here is fixed data: the seeded
parts of the world live in :mod:`egonlq.demo.model`.
"""

from __future__ import annotations

import functools

import numpy as np

DOMAINS: tuple[str, ...] = ("kitchen", "workshop", "household")

# (object, domain, category); categories decide which verbs apply and name the X of "What X did I Y?"
_OBJECT_TABLE: tuple[tuple[str, str, str], ...] = (
    ("knife", "kitchen", "utensil"),
    ("spoon", "kitchen", "utensil"),
    ("fork", "kitchen", "utensil"),
    ("plate", "kitchen", "utensil"),
    ("pan", "kitchen", "utensil"),
    ("cutting board", "kitchen", "utensil"),
    ("bowl", "kitchen", "container"),
    ("cup", "kitchen", "container"),
    ("mug", "kitchen", "container"),
    ("pot", "kitchen", "container"),
    ("bottle", "kitchen", "container"),
    ("jar", "kitchen", "container"),
    ("kettle", "kitchen", "device"),
    ("sponge", "kitchen", "item"),
    ("onion", "kitchen", "food"),
    ("tomato", "kitchen", "food"),
    ("carrot", "kitchen", "food"),
    ("potato", "kitchen", "food"),
    ("apple", "kitchen", "food"),
    ("egg", "kitchen", "food"),
    ("hammer", "workshop", "tool"),
    ("screwdriver", "workshop", "tool"),
    ("wrench", "workshop", "tool"),
    ("saw", "workshop", "tool"),
    ("chisel", "workshop", "tool"),
    ("clamp", "workshop", "tool"),
    ("tape measure", "workshop", "tool"),
    ("paintbrush", "workshop", "tool"),
    ("drill", "workshop", "device"),
    ("torch", "workshop", "device"),
    ("extension cord", "workshop", "device"),
    ("nail", "workshop", "item"),
    ("screw", "workshop", "item"),
    ("bolt", "workshop", "item"),
    ("plank", "workshop", "item"),
    ("ladder", "workshop", "item"),
    ("bucket", "workshop", "container"),
    ("toolbox", "workshop", "container"),
    ("glove", "workshop", "clothing"),
    ("helmet", "workshop", "clothing"),
    ("towel", "household", "clothing"),
    ("shirt", "household", "clothing"),
    ("sock", "household", "clothing"),
    ("shoe", "household", "clothing"),
    ("jacket", "household", "clothing"),
    ("hat", "household", "clothing"),
    ("blanket", "household", "clothing"),
    ("phone", "household", "device"),
    ("remote", "household", "device"),
    ("laptop", "household", "device"),
    ("lamp", "household", "device"),
    ("book", "household", "item"),
    ("pillow", "household", "item"),
    ("broom", "household", "item"),
    ("mop", "household", "item"),
    ("key", "household", "item"),
    ("wallet", "household", "item"),
    ("basket", "household", "container"),
    ("bag", "household", "container"),
    ("box", "household", "container"),
)
OBJECTS: tuple[str, ...] = tuple(name for name, _, _ in _OBJECT_TABLE)

# place -> (domain, preposition for "... the cup in the sink" / "... the cup on the table")
_PLACE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("fridge", "kitchen", "in"),
    ("sink", "kitchen", "in"),
    ("counter", "kitchen", "on"),
    ("stove", "kitchen", "on"),
    ("drawer", "kitchen", "in"),
    ("workbench", "workshop", "on"),
    ("shelf", "workshop", "on"),
    ("rack", "workshop", "on"),
    ("cart", "workshop", "in"),
    ("floor", "workshop", "on"),
    ("table", "household", "on"),
    ("sofa", "household", "on"),
    ("bed", "household", "on"),
    ("closet", "household", "in"),
    ("desk", "household", "on"),
)
PLACES: tuple[str, ...] = tuple(name for name, _, _ in _PLACE_TABLE)

# verb -> (third person, past)
VERB_FORMS: dict[str, tuple[str, str]] = {
    "pick": ("picks", "picked"),
    "put": ("puts", "put"),
    "take": ("takes", "took"),
    "hold": ("holds", "held"),
    "drop": ("drops", "dropped"),
    "move": ("moves", "moved"),
    "place": ("places", "placed"),
    "carry": ("carries", "carried"),
    "open": ("opens", "opened"),
    "close": ("closes", "closed"),
    "cut": ("cuts", "cut"),
    "wash": ("washes", "washed"),
    "pour": ("pours", "poured"),
    "turn on": ("turns on", "turned on"),
    "turn off": ("turns off", "turned off"),
    "clean": ("cleans", "cleaned"),
    "wipe": ("wipes", "wiped"),
    "fold": ("folds", "folded"),
    "stir": ("stirs", "stirred"),
    "fill": ("fills", "filled"),
}
VERBS: tuple[str, ...] = tuple(VERB_FORMS)

PEOPLE: tuple[str, ...] = ("man", "woman", "boy", "girl", "lady", "person")

_GENERIC_VERBS = ("pick", "put", "take", "hold", "drop", "move", "place", "carry")
_CATEGORY_VERBS: dict[str, tuple[str, ...]] = {
    "utensil": ("wash", "clean", "wipe"),
    "container": ("open", "close", "wash", "pour", "fill", "stir"),
    "food": ("cut", "wash"),
    "tool": ("clean", "wipe"),
    "device": ("turn on", "turn off", "open", "close", "wipe"),
    "clothing": ("fold", "wash"),
    "item": ("clean", "wipe"),
}
PUT_VERBS = ("put", "place", "drop")
STATE_VERBS = ("open", "close", "turn on", "turn off", "fill", "wash", "cut", "fold", "clean")
TAKE_VERBS = ("pick", "take")
TOWARD_VERBS = ("move", "carry")

# Narrations that describe no event ("#C C walks to the sink"); EgoClip verb tags index VERBS + these.
FILLERS: tuple[tuple[str, str, bool], ...] = (
    ("walk", "walks to the {place}", True),
    ("look", "looks around the {place}", True),
    ("stand", "stands up", False),
)
ACTIVITIES = {
    "kitchen": "cooks in the kitchen",
    "workshop": "repairs things in the workshop",
    "household": "tidies up the house",
}

# The 13 official templates, verbatim (curly apostrophe, space before "?"); weights: their v1 val counts.
TEMPLATES: tuple[str, ...] = (
    "Objects: Where is object X before / after event Y?",
    "Place: Where did I put X?",
    "Objects: What did I put in X?",
    "Objects: Where is object X?",
    "Objects: What X did I Y?",
    "Objects: What X is Y?",
    "Objects: How many X\u2019s? (quantity question)",
    "Objects: In what location did I see object X ?",
    "Objects: State of an object",
    "People: Who did I interact with when I did activity X?",
    "People: Who did I talk to in location X?",
    "Objects: Where is my object X?",
    "People: When did I talk to or interact with person with role X?",
)
TEMPLATE_WEIGHTS = np.array([644, 626, 476, 447, 312, 306, 300, 293, 168, 102, 83, 77, 25], dtype=np.float64)
PEOPLE_TEMPLATES = (9, 10, 12)

OBJ_CATEGORY = np.array([c for _, _, c in _OBJECT_TABLE])
OBJ_DOMAIN = np.array([DOMAINS.index(d) for _, d, _ in _OBJECT_TABLE])
PLACE_DOMAIN = np.array([DOMAINS.index(d) for _, d, _ in _PLACE_TABLE])
PLACE_PREP = tuple(p for _, _, p in _PLACE_TABLE)


def _verb_weights() -> np.ndarray:
    """Compatibility weights ``[object, verb]``: generic verbs 1, the category's own verbs 2."""
    w = np.zeros((len(OBJECTS), len(VERBS)))
    for o, (_, _, category) in enumerate(_OBJECT_TABLE):
        for v in _GENERIC_VERBS:
            w[o, VERBS.index(v)] = 1.0
        for v in _CATEGORY_VERBS[category]:
            w[o, VERBS.index(v)] = 2.0
    return w / w.sum(axis=1, keepdims=True)


VERB_CDF = np.cumsum(_verb_weights(), axis=1)


def plural(noun: str) -> str:
    """English plural of a vocabulary noun ("knife" -> "knives", "box" -> "boxes")."""
    if noun.endswith("fe"):
        return noun[:-2] + "ves"
    if noun.endswith(("s", "sh", "ch", "x", "o")):
        return noun + "es"
    return noun + "s"


@functools.cache
def narration_sentence(form: int, verb: int, obj: int, place: int, person: int, filler: int) -> str:
    """Ego4D-style narration text; forms 0/1 are first-pass style, 2/3 the second pass's paraphrases."""
    second = form >= 2
    if person >= 0:
        subject = f"#O {PEOPLE[person]} X" if second else f"#O the {PEOPLE[person]}"
    else:
        subject = "#C C"
    if filler >= 0:
        _, text, with_place = FILLERS[filler]
        return f"{subject} {text.format(place=PLACES[place])}" if with_place else f"{subject} {text}"
    verb_name = VERBS[verb]
    article = ("an" if OBJECTS[obj][0] in "aeiou" else "a") if second else "the"
    sentence = f"{subject} {VERB_FORMS[verb_name][0]} {article} {OBJECTS[obj]}"
    if form in (1, 3):
        return sentence
    if verb_name in TAKE_VERBS:
        prep = "from"
    elif verb_name in TOWARD_VERBS:
        prep = "to"
    else:
        prep = PLACE_PREP[place]
    return f"{sentence} {prep} the {PLACES[place]}"


@functools.cache
def egoclip_tags(form: int, verb: int, obj: int, place: int, person: int, filler: int) -> tuple[str, str]:
    """EgoClip ``tag_verb`` / ``tag_noun``: indices into VERBS (+ fillers) and OBJECTS + PLACES + PEOPLE."""
    n_o, n_p = len(OBJECTS), len(PLACES)
    if filler >= 0:
        return f"[{len(VERBS) + filler}]", f"[{n_o + place}]" if FILLERS[filler][2] else "[]"
    nouns = [obj] + ([n_o + place] if form in (0, 2) else []) + ([n_o + n_p + person] if person >= 0 else [])
    return f"[{verb}]", "[" + ", ".join(map(str, nouns)) + "]"
