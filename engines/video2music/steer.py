"""Words that steer a match: attribute directions, tags, references to earlier results.

:func:`parse_turn` reads one turn of text (``"calmer, with piano"``, ``"less drums"``,
``"more like the second one"``, ``"not that one"``, ``"like a heist movie"``) into a
:class:`Turn`: directions on measured attributes (tempo, energy, brightness, onset density
— the library's proxy for drums and busyness — and major/minor mode), tag words matched
against the tracks' tags and descriptions, reject / like references to the previous list
by position, and the free text for the sentence-embedding match.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

ATTRS = ("tempo", "energy", "brightness", "density", "major")
#: what each attribute is called in rationales
ATTR_LABEL = {"tempo": "tempo", "energy": "energy", "brightness": "brightness",
              "density": "busyness/drums", "major": "major-key feel"}

_W: dict[str, dict[str, float]] = {}


def _add(words: str, **dirs: float) -> None:
    for w in words.split():
        _W.setdefault(w, {}).update(dirs)


_add("fast faster quick quicker upbeat uptempo speedy frantic hurried", tempo=1.0)
_add("slow slower downtempo leisurely ballad unhurried", tempo=-1.0)
_add("energetic energy intense intensity punchy punchier powerful action epic aggressive exciting "
     "harder louder driving bigger heavier heavy pumping dramatic", energy=1.0)
_add("calm calmer chill relaxed quiet quieter soft softer gentle gentler peaceful mellow tranquil "
     "serene laid-back relaxing soothing lighter", energy=-1.0)
_add("happy happier cheerful uplifting joyful joyous major sunny optimistic positive playful",
     major=1.0)
_add("sad sadder melancholic melancholy minor somber sombre gloomy moody tense sinister ominous "
     "tragic suspense suspenseful mysterious eerie menacing", major=-1.0)
_add("bright brighter airy crisp sparkling shimmering shiny", brightness=1.0)
_add("dark darker warm warmer muffled deep deeper bassy", brightness=-1.0)
_add("busy busier dense denser drums drum percussion percussive rhythmic beat beats groove groovy",
     density=1.0)
_add("sparse sparser minimal minimalist simple simpler ambient stripped", density=-1.0)
_add("drums drum percussion percussive", energy=0.4)
_add("darker dark", major=-0.5)
_add("brighter", major=0.3)
_add("calm calmer chill relaxed quiet quieter softer gentle", density=-0.4, tempo=-0.3)
_add("energetic intense action aggressive exciting", tempo=0.4)

#: scene / genre words and the correspondences a music supervisor would apply
SCENES: dict[str, dict[str, float]] = {
    "heist": {"major": -0.7, "tempo": 0.4, "density": 0.6},
    "chase": {"tempo": 1.0, "energy": 1.0}, "fight": {"tempo": 0.8, "energy": 1.0},
    "battle": {"energy": 1.0, "major": -0.4}, "thriller": {"major": -0.8, "density": 0.4},
    "spy": {"major": -0.6, "density": 0.4}, "romantic": {"energy": -0.8, "major": 0.6, "tempo": -0.5},
    "romance": {"energy": -0.8, "major": 0.6, "tempo": -0.5}, "love": {"energy": -0.6, "major": 0.6},
    "horror": {"major": -1.0, "brightness": -0.6, "density": -0.5}, "scary": {"major": -1.0},
    "creepy": {"major": -1.0, "brightness": -0.5}, "wedding": {"major": 1.0, "brightness": 0.5},
    "sports": {"energy": 1.0, "tempo": 0.8}, "workout": {"energy": 1.0, "tempo": 1.0},
    "party": {"energy": 1.0, "tempo": 0.8, "major": 0.5}, "documentary": {"energy": -0.5, "density": -0.4},
    "nature": {"energy": -0.6, "density": -0.5}, "funeral": {"major": -1.0, "tempo": -1.0},
    "comedy": {"major": 1.0, "brightness": 0.4}, "funny": {"major": 1.0, "brightness": 0.4},
    "trailer": {"energy": 1.0}, "dreamy": {"energy": -0.8, "brightness": -0.4},
    "lofi": {"energy": -0.6, "tempo": -0.6}, "lo-fi": {"energy": -0.6, "tempo": -0.6},
    "adventure": {"energy": 0.6, "major": 0.5}, "montage": {"tempo": 0.5, "energy": 0.4},
}

#: tag words and the spellings that count as a match in a track's tags or description
TAGS: dict[str, tuple[str, ...]] = {
    "piano": ("piano",), "guitar": ("guitar",), "strings": ("string", "violin", "cello", "quartet"),
    "violin": ("violin", "fiddle"), "cello": ("cello",), "flute": ("flute", "whistle", "recorder"),
    "brass": ("brass", "trumpet", "horn", "trombone"), "trumpet": ("trumpet",),
    "choir": ("choir", "choral", "chorale"), "organ": ("organ",), "harp": ("harp",),
    "synth": ("synth", "electronic"), "electronic": ("electronic", "techno", "synth", "electro"),
    "techno": ("techno", "electronic"), "rock": ("rock",), "metal": ("metal",),
    "orchestral": ("orchestra", "symphon"), "orchestra": ("orchestra", "symphon"),
    "folk": ("folk", "celtic", "irish"), "celtic": ("celtic", "irish"), "jazz": ("jazz",),
    "classical": ("classical", "baroque", "quartet", "chorale", "orchestra"),
    "chiptune": ("chiptune", "chip", "8-bit", "8bit"), "pop": ("pop",), "funk": ("funk",),
    "blues": ("blues",), "oriental": ("oriental", "asian"), "pirate": ("pirate",),
    "medieval": ("medieval",), "march": ("march",), "waltz": ("waltz",), "dance": ("dance",),
    "vocals": ("vocal", "voice", "sing", "choir", "aahs"), "vocal": ("vocal", "voice", "sing", "choir"),
    "voice": ("vocal", "voice", "sing", "choir"), "singing": ("vocal", "voice", "sing", "choir"),
    "bass": ("bass",), "bells": ("bell",), "marimba": ("marimba",), "accordion": ("accordion",),
}

_NEG = {"less", "no", "without", "fewer", "lose", "drop", "minus", "not", "avoid", "skip", "lower"}
_POS = {"more", "with", "add", "plus", "higher", "extra"}
_ORD = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
        "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
        "last": -1, "that": 1, "this": 1, "it": 1, "top": 1}
_ORD_RE = r"(?:#\s*(\d+)|(?:number|no\.?|track)\s*(\d+)|\b(\d+)\b|\b(" + "|".join(_ORD) + r")\b)"
_REJECT = re.compile(r"\b(?:not|no|drop|skip|remove|reject|exclude|lose|hate|without)\b\s+(?:the\s+)?"
                     + _ORD_RE + r"(?:\s+one)?")
_LIKE = re.compile(r"\b(?:like|similar\s+to|closer\s+to|same\s+as|along\s+the\s+lines\s+of|keep)\s+"
                   r"(?:the\s+)?" + _ORD_RE + r"(?:\s+one|\s+track|\s+pick)?\b")
_RESTORE = re.compile(r"\b(?:bring\s+back|restore|undo|un-?reject|rejected\s+ones?\s+(?:are|is)\s+(?:ok|fine))")
_BPM = re.compile(r"(\d{2,3})\s*bpm")


@dataclass
class Turn:
    """One turn of text, parsed."""

    text: str
    directions: dict[str, float] = field(default_factory=dict)  # attr -> signed strength
    tags: dict[str, float] = field(default_factory=dict)        # tag word -> +1 want / -1 avoid
    rejects: list[int] = field(default_factory=list)            # 1-based positions in the last list
    likes: list[int] = field(default_factory=list)
    restore: bool = False
    bpm: float = 0.0
    labels: list[str] = field(default_factory=list)             # words that did something

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def empty(self) -> bool:
        return not (self.directions or self.tags or self.rejects or self.likes or self.restore
                    or self.bpm)


def _ordinal(m: re.Match[str]) -> int:
    for g in m.groups():
        if g:
            return int(g) if g.isdigit() else _ORD[g]
    return 1


def parse_turn(text: str) -> Turn:
    """Parse one turn of steering text."""
    t = Turn(text=text.strip())
    low = " " + text.lower().replace("’", "'") + " "
    for m in _REJECT.finditer(low):
        t.rejects.append(_ordinal(m))
        t.labels.append(m.group(0).strip())
    for m in _LIKE.finditer(low):
        if any(m.start() >= r.start() and m.end() <= r.end() for r in _REJECT.finditer(low)):
            continue
        t.likes.append(_ordinal(m))
        t.labels.append(m.group(0).strip())
        # "more like the second one" is a reference, not "more" of anything
        low = low[:m.start()] + " " * (m.end() - m.start()) + low[m.end():]
    for m in _REJECT.finditer(low):
        low = low[:m.start()] + " " * (m.end() - m.start()) + low[m.end():]
    if _RESTORE.search(low):
        t.restore = True
        t.labels.append("bring back rejected")
    m = _BPM.search(low)
    if m:
        t.bpm = float(m.group(1))
        t.labels.append(m.group(0))
    words = re.findall(r"[a-z0-9][a-z0-9\-]*", low)
    for i, w in enumerate(words):
        before = words[max(0, i - 3):i]
        neg = any(b in _NEG for b in before) and not any(b in _POS for b in before[-1:])
        if "not" in before[-2:] and words[i - 1:i] in (["so"], ["as"], ["too"]):
            neg = True
        sign = -1.0 if neg else 1.0
        key = w.rstrip("s") if w not in _W and w not in TAGS and w not in SCENES else w
        if key in _W:
            for a, s in _W[key].items():
                t.directions[a] = t.directions.get(a, 0.0) + sign * s
            t.labels.append(("less " if neg else "") + w)
        if key in SCENES:
            for a, s in SCENES[key].items():
                t.directions[a] = t.directions.get(a, 0.0) + sign * s
            t.labels.append(("not " if neg else "") + w)
        if key in TAGS:
            t.tags[key] = sign
            if key not in _W:
                t.labels.append(("no " if neg else "") + w)
    t.directions = {a: max(-1.5, min(1.5, v)) for a, v in t.directions.items() if abs(v) > 1e-6}
    return t
