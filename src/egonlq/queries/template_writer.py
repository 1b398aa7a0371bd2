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
WRITER_VERSION = "2"  # bump when the writer's output changes: it is part of the backend fingerprint

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
shows show showed | passes pass passed | makes make made | draws draw drew | deals deal dealt
feeds feed fed | fits fit fit | casts cast cast | sticks stick stuck | drives drive drove | lays lay laid
sews sew sewed
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
PUT_VERBS = frozenset(
    "put place keep leave set drop hang store return throw pack insert arrange stack".split()
)
# Things whose place never changes (fixtures, furniture, appliances) or that are part of the body or not
# objects at all: "Where is the tap?" or "Where is my hand?" is not a question anyone needs answered.
FIXED_OBJECTS = frozenset(
    """tap faucet sink fridge refrigerator freezer drawer cabinet cupboard wardrobe closet door window oven
    stove stovetop cooker hob burner microwave dishwasher counter countertop worktop wall floor ceiling
    ground shelf table desk bed sofa armchair couch chair stairs toilet shower bathtub bath radiator
    socket switch light lamp television tv gate fence hedge lawn grass lake river sky road car engine
    bonnet boot printer monitor washing machine dryer heater heat level edge hole puncture air channel
    tag plant plants tree trees""".split()
)
# Liquids and the like: where they are is not a question (their container's is).
LIQUIDS = frozenset("water milk juice oil tea coffee detergent stew soup sauce batter".split())
# Modifiers that answer "What X did I Y?" ("the red cup"); a compound ("lunch box") does not.
ADJECTIVES = frozenset(
    """red blue green yellow black white brown grey gray pink orange purple small big large little long short
    wet dry dirty clean empty full new old wooden plastic metal paper hot cold""".split()
)
BODY_PARTS = frozenset(
    """hand hands finger fingers face mouth teeth tooth head hair ear ears eye eyes arm arms leg legs foot
    feet body""".split()
)
# "Where is my X?" is asked of personal belongings only (heads of object phrases).
PERSONAL = frozenset(
    """phone keys key wallet bag purse backpack jacket coat hat cap shoe shoes glasses watch ring laptop card
    pen notebook book bottle mug cup towel toothbrush umbrella headphones charger box bicycle bike helmet
    scarf gloves glove shirt""".split()
)
FIXED_PHRASES = frozenset(
    """washing machine|rice cooker|trash can|dining table|coffee table|front door|car door|garden tap|
    gas burner|utility sink|bedside table|bathroom cabinet""".replace("\n    ", "").split("|")
)
# Uncountable nouns: no "How many X's?".
MASS_NOUNS = frozenset(
    """rice water milk flour sugar salt pepper oil soil sand paint dough batter stew soup sauce juice tea
    coffee food detergent toothpaste soap air thread tape paper foil film powder grass hair money""".split()
)
PLURAL_ONLY = frozenset("scissors trousers pants jeans shorts glasses tongs pliers clothes groceries".split())
_SINGULAR_S = frozenset("gas lens bus canvas atlas bonus cactus virus".split())
PEOPLE = frozenset(
    "man woman lady boy girl person child kid baby friend guy customer cashier worker men women".split()
)
_TALK_VERBS = frozenset("talk speak chat converse".split())
STATE_OF = {("open", ""): "open", ("close", ""): "closed", ("turn", "on"): "on", ("turn", "off"): "off",
            ("switch", "on"): "on", ("switch", "off"): "off"}  # fmt: skip
PLACE_PREPS = ("from", "into", "in", "onto", "on", "inside", "to", "at", "under", "near", "beside", "over")
# Words that end an object phrase: prepositions, stray particles ("stands up"), conjunctions.
_STOP = set(PLACE_PREPS) | set("with by towards off out through across behind for while using".split())
_STOP |= set("and then up down around away back together upside apart ,".split())
_DETERMINERS = frozenset(
    """a an the some his her their its my your this that these those another one two three four five six
    both few several all new""".split()
)
_INDEFINITE = frozenset("a an some two three four five six several few".split())
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
    indefinite: bool = False  # the object is a new instance ("a cup", "two cups", "weeds"), not "the cup"


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
    first = rest[0] if rest else ""
    indefinite = obj is not None and (first in _INDEFINITE or (first not in _DETERMINERS and is_plural(obj)))
    return Parsed(actor, role, base, past, obj, prep, place, indefinite)


def _key_hash(*parts: object) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).hexdigest()[:12], 16)


def _in_or_on(prep: str | None, place: str) -> str:
    if prep in ("in", "into", "inside"):
        return "in"
    if prep in ("on", "onto"):
        return "on"
    return "in" if place.split()[-1] in _IN_PLACES else "on"


def head(phrase: str) -> str:
    """The head noun of an object phrase: the word before "of", else the last word."""
    words = phrase.split()
    return words[words.index("of") - 1] if "of" in words[1:] else words[-1]


def is_plural(phrase: str) -> bool:
    """Whether a noun phrase is plural (its head noun), for "is"/"are" agreement."""
    w = head(phrase)
    if w in PLURAL_ONLY or w in IRREGULAR_PLURAL.values():
        return True
    return w.endswith("s") and not w.endswith(("ss", "us", "is")) and w not in _SINGULAR_S


def is_fixed(phrase: str) -> bool:
    """Whether the object never moves (a fixture or a part of one, a body part, not an object at all): no
    location questions."""
    words = phrase.split()
    owner = " ".join(w for w in words[words.index("of") + 1 :] if w != "the") if "of" in words[1:] else ""
    return (
        phrase in FIXED_PHRASES
        or head(phrase) in FIXED_OBJECTS | BODY_PARTS
        or (owner != "" and owner != phrase and is_fixed(owner))
    )


def _be(phrase: str, *, past: bool = False) -> str:
    if past:
        return "were" if is_plural(phrase) else "was"
    return "are" if is_plural(phrase) else "is"


def _same_thing(a: str, b: str) -> bool:
    """Whether two object phrases name the same thing ("plates" / "the plate"): equal singular heads."""
    return _singular(head(a)) == _singular(head(b))


def _singular(word: str) -> str:
    for singular, plural in IRREGULAR_PLURAL.items():
        if word == plural:
            return singular
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and word not in _SINGULAR_S:
        return word[:-1]
    return word


def candidate_questions(p: Parsed, before: Parsed | None, after: Parsed | None) -> list[tuple[str, str]]:
    """Every (template, question) that fits the narration on its own; ``before``/``after`` are its block
    neighbours. Counting questions need several narrations: :func:`count_questions`.

    Rules: location questions only for things that move (not :data:`FIXED_OBJECTS`); "is"/"are" agree with
    the object; "What X did I Y?" only when the object has a modifier that answers it ("red cup" -> "What
    cup did I pick?") and never for put verbs (their question names the place); a before/after event is
    about another object; people questions only name people.
    """
    out: list[tuple[str, str]] = []
    if p.actor == "O":
        if p.role in PEOPLE:
            out.append((T_WHEN_ROLE, f"When did I interact with the {p.role}?"))
            if p.verb.split()[0] in _TALK_VERBS and p.place and p.place not in PEOPLE:
                where = "in" if _in_or_on(p.prep, p.place) == "in" else "at"
                out.append((T_WHO_TALK, f"Who did I talk to {where} the {p.place}?"))
        if p.obj and not is_fixed(p.obj):
            out.append((T_SEE, f"In what location did I see the {p.obj} ?"))
        return out
    if p.obj is None:
        return out
    base = p.verb.split()[0]
    place = p.place
    if p.place and head(p.place) in BODY_PARTS:  # "arranges the cards in his hand": not a put
        place, base = None, ""
    if p.place and head(p.place) in PEOPLE:
        if p.prep in ("to", "with"):
            out.append((T_WHO_ACTIVITY, f"Who did I interact with when I {p.past} the {p.obj}?"))
        place = None
    state = STATE_OF.get((base, p.verb.split()[1] if " " in p.verb else ""))
    if state:
        out.append((T_STATE, f"Did I leave the {p.obj} {state}?"))
    if base in PUT_VERBS and place and p.prep in ("in", "into", "inside", "on", "onto"):
        out.append((T_PUT_IN, f"What did I put {_in_or_on(p.prep, place)} the {place}?"))
    if is_fixed(p.obj) or head(p.obj) in LIQUIDS:
        return out
    be = _be(p.obj)
    out += [
        (T_WHERE, f"Where {be} the {p.obj}?"),
        (T_SEE, f"In what location did I see the {p.obj} ?"),
    ]
    if head(p.obj) in PERSONAL:
        out.append((T_WHERE_MY, f"Where {be} my {p.obj}?"))
    modified = len(p.obj.split()) >= 2 and p.obj.split()[0] in ADJECTIVES and head(p.obj) not in MASS_NOUNS
    if base in PUT_VERBS:
        out.append((T_PUT, f"Where did I put the {p.obj}?"))
        if modified and place and p.prep in ("in", "into", "inside", "on", "onto"):
            x = head(p.obj)
            out.append((T_WHAT_IS, f"What {x} {_be(x)} {_in_or_on(p.prep, place)} the {place}?"))
    elif modified:
        out.append((T_WHAT_DID, f"What {head(p.obj)} did I {p.verb}?"))
    for word, other in (("before", after), ("after", before)):
        if (
            other is not None
            and other.actor == "C"
            and other.obj
            and head(other.obj) not in BODY_PARTS
            and not _same_thing(other.obj, p.obj)
        ):
            was = _be(p.obj, past=True)
            out.append((T_BEFORE_AFTER, f"Where {was} the {p.obj} {word} I {other.past} the {other.obj}?"))
    return out


def count_questions(parsed: list[Parsed | None]) -> dict[int, tuple[int, str]]:
    """ "How many X's did I Y?" where the block holds the same action on new instances of the same countable
    object ("a glass", "weeds") at least twice: first narration index -> (last narration index, question).
    The answer spans all instances. "The cucumber" sliced twice is one cucumber: no count."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(parsed):
        if (
            p is not None
            and p.actor == "C"
            and p.obj
            and p.indefinite
            and head(p.obj) not in MASS_NOUNS
            and not is_fixed(p.obj)
        ):
            groups.setdefault((p.verb, _singular(head(p.obj))), []).append(i)
    out = {}
    for (verb, _), idx in groups.items():
        if len(idx) >= 2:
            obj = parsed[idx[0]].obj
            out[idx[0]] = (idx[-1], f"How many {obj if is_plural(obj) else pluralise(obj)} did I {verb}?")
    return out


def write_block_questions(
    items: list[tuple[str | None, str]], *, seed: int
) -> list[tuple[int, str, str, int]]:
    """One question per narration of a block (``(time, text_clean)`` items) where one fits.

    Returns ``(index from 1, template, question, last index from 1)``: the question's answer spans the
    narrations ``index..last`` (several for counting questions). A pronoun object ("it") takes the previous
    narration's.
    """
    parsed: list[Parsed | None] = []
    for _, text in items:
        p = parse_narration(text)
        if p is not None and p.obj is None and parsed and parsed[-1] is not None and _mentions_pronoun(text):
            p = Parsed(p.actor, p.role, p.verb, p.past, parsed[-1].obj, p.prep, p.place, False)
        parsed.append(p)
    counts = count_questions(parsed)
    out = []
    for i, ((time, text), p) in enumerate(zip(items, parsed, strict=True)):
        if i in counts:
            last, question = counts[i]
            out.append((i + 1, T_HOW_MANY, question, last + 1))
            continue
        if p is None:
            continue
        before = parsed[i - 1] if i > 0 else None
        after = parsed[i + 1] if i + 1 < len(parsed) else None
        candidates = candidate_questions(p, before, after)
        if candidates:
            template, question = candidates[_key_hash(seed, time, text) % len(candidates)]
            out.append((i + 1, template, question, i + 1))
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
