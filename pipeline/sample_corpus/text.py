"""Deterministic English-like text: sentences to read aloud, book titles and author names (no downloads)."""

from __future__ import annotations

import re

import numpy as np

# Small fixed vocabularies: enough variety for espeak-ng to produce many different phone sequences, and
# stable across versions because the lists live in code (a seed must keep meaning the same corpus).
_DETERMINERS = ("the", "a", "every", "that", "one", "this", "some", "no")
_ADJECTIVES = (
    "old",
    "quiet",
    "bright",
    "distant",
    "small",
    "golden",
    "heavy",
    "gentle",
    "broken",
    "silver",
    "patient",
    "narrow",
    "curious",
    "hidden",
    "ancient",
    "restless",
    "pale",
    "warm",
    "bitter",
    "honest",
)
_NOUNS = (
    "captain",
    "garden",
    "river",
    "letter",
    "village",
    "window",
    "stranger",
    "mountain",
    "lantern",
    "sailor",
    "kingdom",
    "forest",
    "merchant",
    "island",
    "bridge",
    "doctor",
    "harbour",
    "castle",
    "orchard",
    "traveller",
    "widow",
    "soldier",
    "painter",
    "valley",
    "chapel",
    "meadow",
    "clock",
    "carriage",
    "storm",
    "shepherd",
)
_VERBS = (
    "watched",
    "followed",
    "remembered",
    "carried",
    "described",
    "crossed",
    "answered",
    "opened",
    "found",
    "visited",
    "praised",
    "feared",
    "studied",
    "guarded",
    "abandoned",
    "promised",
    "reached",
    "named",
)
_ADVERBS = ("slowly", "gladly", "at last", "once more", "in silence", "before dawn", "without a word", "again")
_PREPOSITIONS = ("near", "beyond", "under", "behind", "across", "beside", "towards", "above")
_CONNECTIVES = ("and", "but", "while", "because", "so", "although", "until")
_FIRST_NAMES = (
    "Arthur",
    "Mary",
    "Henry",
    "Eliza",
    "Walter",
    "Clara",
    "Thomas",
    "Agnes",
    "Edmund",
    "Louisa",
    "George",
    "Harriet",
    "Samuel",
    "Edith",
    "Charles",
    "Frances",
    "James",
    "Beatrice",
    "Robert",
    "Winifred",
)
_LAST_NAMES = (
    "Ashford",
    "Bramley",
    "Carrow",
    "Dunmore",
    "Ellery",
    "Fenwick",
    "Garside",
    "Holloway",
    "Ingram",
    "Jessop",
    "Kendrick",
    "Lyall",
    "Marlowe",
    "Norcott",
    "Osgood",
    "Pemberton",
    "Quarles",
    "Radley",
    "Sefton",
    "Thorne",
)
_TITLE_FORMS = ("The {adj} {noun}", "A {noun} of the {noun2}", "The {noun} and the {noun2}", "{adj} {noun}s")
_GENRES = (
    ("General Fiction", "Literature"),
    ("Adventure", "Literature"),
    ("Poetry", "Poetry"),
    ("History", "Science, Craft & Essay"),
    ("Philosophy", "Science, Craft & Essay"),
    ("Children's Fiction", "Literature"),
    ("Plays", "Theater"),
)


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _clause(rng: np.random.Generator) -> str:
    subject = f"{_pick(rng, _DETERMINERS)} {_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
    words = [subject, _pick(rng, _VERBS), f"the {_pick(rng, _NOUNS)}"]
    if rng.random() < 0.5:
        words.append(f"{_pick(rng, _PREPOSITIONS)} the {_pick(rng, _NOUNS)}")
    if rng.random() < 0.4:
        words.append(_pick(rng, _ADVERBS))
    return " ".join(words)


def sentence(rng: np.random.Generator, max_clauses: int = 3) -> str:
    """One sentence of 1..max_clauses clauses, capitalised and ending in a full stop (about 1-2 s per clause)."""
    clauses = [_clause(rng) for _ in range(int(rng.integers(1, max_clauses + 1)))]
    # Commas make espeak-ng pause inside the utterance, like a reader does; those pauses stay in one VAD region.
    text = clauses[0]
    for clause in clauses[1:]:
        text += f", {_pick(rng, _CONNECTIVES)} {clause}"
    return text[0].upper() + text[1:] + "."


def title(rng: np.random.Generator) -> str:
    form = _pick(rng, _TITLE_FORMS)
    text = form.format(adj=_pick(rng, _ADJECTIVES), noun=_pick(rng, _NOUNS), noun2=_pick(rng, _NOUNS))
    return " ".join(word.capitalize() for word in text.split())


def person(rng: np.random.Generator) -> tuple[str, str]:
    """(first name, last name)."""
    return _pick(rng, _FIRST_NAMES), _pick(rng, _LAST_NAMES)


def genre(rng: np.random.Generator) -> tuple[str, str]:
    """(LibriVox genre, LibriLight meta-genre)."""
    return _GENRES[int(rng.integers(len(_GENRES)))]


def slug(text: str) -> str:
    """LibriVox file-name style: lowercase letters and digits only (so names hold no dots or spaces)."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def syllable_count(text: str) -> int:
    """Rough syllable count (vowel groups per word); paces the synthetic backend like a reader."""
    return sum(max(1, len(re.findall(r"[aeiouy]+", word))) for word in re.findall(r"[a-z]+", text.lower()))
