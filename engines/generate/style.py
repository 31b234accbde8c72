"""The style layer: the rule-based part of the generator, named for what it is.

The diffusion model (:mod:`engines.generate.model`) learned from chorales and string
quartets. What that corpus cannot teach comes from rules here, and every rule follows the
requested chords, key and meter:

* **style and mood vocabulary** — tempo range, mode, meter, instruments, density, drums and
  the default progression of each style; mood words shift tempo, mode and density;
* **drum grooves** — per-style templates on the 16th grid (GM drum map, channel 10), adapted
  to the meter, with a fill before each 4-bar phrase and a crash on section starts;
* **comping and bass patterns** — for pop-like styles, the harmony track is block-chord
  comping in the style's rhythm (voiced from the chord tones, smooth voice leading) and the
  bass plays the chord root/slash bass, fifths, octaves and approach notes in the style's
  pattern. Classical textures (chorale, classical, cinematic, ambient, folk) keep the
  model's own harmony and bass voices. ``density`` thins the patterns (:func:`thin_rhythm`:
  the metrically strongest attacks are kept); a chord holding the key's tonic is voiced with
  the tonic on top when the voice leading allows and doubled an octave away;
* **the constraint layer** (:func:`snap_notes`) — every model note that starts on a beat is
  moved to the nearest chord tone; other notes to the nearest tone of the key's scale or the
  current chord. For the melody, the key is made audible: a note on a downbeat goes to the
  nearest chord tone that belongs to the tonic triad (when the chord has one), and the last
  note of each 4-bar phrase to the tonic (or the tonic-triad tone the chord holds). The share of notes moved is reported in the result's ``notes``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.generate import theory


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    tempo: tuple[int, int]
    mode: str = "major"
    meter: str = "4/4"
    instruments: tuple[str, ...] = ("piano", "strings", "bass")
    drums: bool = True
    density: float = 0.5
    groove: str = "pop"
    comp: str | None = "pop"  # None: the model's harmony voices are used
    bass: str | None = "pop"  # None: the model's bass voice is used
    texture: int = 0  # model class: 0 none, 1 chorale, 2 quartet
    swing: float = 0.0  # fraction of a 16th by which off-beat 8ths are delayed
    progression_major: str = "C G Am F"
    progression_minor: str = "Am F C G"
    aliases: tuple[str, ...] = field(default_factory=tuple)


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("pop", "pop song, catchy, radio, upbeat modern pop", (96, 124), "major",
          instruments=("piano", "strings", "electric bass"), groove="pop", comp="pop", bass="pop",
          aliases=("pop", "radio", "mainstream")),
    Style("lofi", "lofi hip hop, chill beats, relaxed, dusty, study music", (70, 90), "major",
          instruments=("electric piano", "electric bass"), groove="lofi", comp="lofi", bass="lofi",
          swing=0.33, density=0.4, progression_major="Dm7 G7 Cmaj7 Am7", progression_minor="Am7 Dm7 Gmaj7 Cmaj7",
          aliases=("lofi", "lo-fi", "chillhop", "study")),
    Style("hiphop", "hip hop, rap beat, boom bap, urban", (84, 96), "minor",
          instruments=("piano", "synth bass"), groove="hiphop", comp="lofi", bass="lofi", swing=0.2,
          progression_minor="Am F Dm E", aliases=("hip-hop", "hiphop", "rap", "boom-bap", "trap")),
    Style("rock", "rock band, electric guitars, driving, powerful", (110, 140), "major",
          instruments=("overdrive guitar", "electric bass"), groove="rock", comp="rock", bass="rock",
          density=0.7, progression_major="C Bb F C", progression_minor="Am G F G",
          aliases=("rock", "punk", "grunge", "metal")),
    Style("jazz", "jazz, swing, smoky club, sophisticated, bebop", (100, 160), "major",
          instruments=("saxophone", "piano", "acoustic bass"), groove="jazz", comp="jazz", bass="walking",
          swing=0.33, progression_major="Dm7 G7 Cmaj7 Cmaj7", progression_minor="Bm7b5 E7 Am7 Am7",
          aliases=("jazz", "swing", "bebop", "jazzy")),
    Style("blues", "blues, twelve bar, soulful, bluesy shuffle", (80, 120), "major",
          instruments=("electric guitar", "piano", "electric bass"), groove="shuffle", comp="jazz",
          bass="walking", swing=0.33,
          progression_major="C7 C7 C7 C7 F7 F7 C7 C7 G7 F7 C7 G7",
          progression_minor="Am7 Am7 Am7 Am7 Dm7 Dm7 Am7 Am7 E7 Dm7 Am7 E7", aliases=("blues", "bluesy")),
    Style("funk", "funk, groovy, syncopated, disco, slap", (96, 116), "dorian",
          instruments=("clavinet", "electric bass"), groove="funk", comp="funk", bass="funk", density=0.75,
          progression_major="C7 F7 C7 G7", progression_minor="Am7 D7 Am7 D7",
          aliases=("funk", "funky", "disco", "groovy")),
    Style("electronic", "electronic dance music, edm, house, techno, club, synth", (118, 130), "minor",
          instruments=("synth lead", "synth pad", "synth bass"), groove="house", comp="pad", bass="edm",
          density=0.7, progression_minor="Am F C G", aliases=("edm", "house", "techno", "electronic",
                                                              "dance", "trance", "synthwave")),
    Style("bossa", "bossa nova, latin, brazilian, samba, gentle", (120, 140), "major",
          instruments=("nylon guitar", "flute", "acoustic bass"), groove="bossa", comp="bossa", bass="bossa",
          progression_major="Cmaj7 Dm7 G7 Cmaj7", progression_minor="Am7 Dm7 E7 Am7",
          aliases=("bossa", "latin", "samba", "brazilian")),
    Style("reggae", "reggae, ska, dub, island, offbeat skank", (70, 90), "major",
          instruments=("electric guitar", "organ", "electric bass"), groove="reggae", comp="skank",
          bass="pop", aliases=("reggae", "ska", "dub")),
    Style("ballad", "slow ballad, romantic, emotional, tender love song", (60, 76), "major",
          instruments=("piano", "strings", "acoustic bass"), groove="ballad", comp="arpeggio", bass="root",
          density=0.35, progression_major="C Am F G", progression_minor="Am F C E",
          aliases=("ballad", "romantic", "love")),
    Style("classical", "classical music, string quartet, orchestra, baroque, elegant", (80, 120), "major",
          instruments=("violin", "viola", "cello"), drums=False, groove="none", comp=None, bass=None,
          texture=2, progression_major="C F G C", progression_minor="Am Dm E Am",
          aliases=("classical", "quartet", "baroque", "chamber", "orchestral", "mozart", "haydn")),
    Style("chorale", "chorale, hymn, choir, church, sacred, four-part harmony", (60, 84), "major",
          instruments=("choir", "organ"), drums=False, groove="none", comp=None, bass=None, texture=1,
          progression_major="C Am F G", progression_minor="Am Dm E Am",
          aliases=("chorale", "hymn", "choir", "church", "sacred", "bach", "gospel")),
    Style("cinematic", "cinematic film score, epic, trailer, orchestral, heroic", (70, 100), "minor",
          instruments=("french horn", "strings", "contrabass"), groove="cinematic", comp=None, bass=None,
          texture=2, density=0.55, progression_minor="Am F C G", progression_major="C Ab Bb C",
          aliases=("cinematic", "film", "epic", "trailer", "score", "soundtrack", "heroic")),
    Style("ambient", "ambient, atmospheric, drone, calm, meditative, spacious", (60, 80), "major",
          instruments=("synth pad", "electric piano", "synth bass"), drums=False, groove="none", comp="pad",
          bass="root", density=0.25, progression_major="Cmaj7 Fmaj7 Am7 Fmaj7", progression_minor="Am7 Fmaj7 Cmaj7 G",
          aliases=("ambient", "atmospheric", "drone", "meditative", "spacey")),
    Style("folk", "folk song, acoustic, country, celtic, traditional", (90, 120), "major",
          instruments=("acoustic guitar", "fiddle", "acoustic bass"), drums=False, groove="none",
          comp="arpeggio", bass="pop", texture=0, progression_major="C F C G", progression_minor="Am G Am E",
          aliases=("folk", "acoustic", "country", "celtic", "traditional", "irish")),
    Style("waltz", "waltz, three-four, ballroom, dance in three", (84, 104), "major", meter="3/4",
          instruments=("piano", "strings", "acoustic bass"), drums=False, groove="none", comp="waltz",
          bass="waltz", progression_major="C G7 G7 C", progression_minor="Am E7 E7 Am", aliases=("waltz",)),
)}
DEFAULT_STYLE = "pop"


@dataclass(frozen=True)
class Mood:
    name: str
    description: str
    mode: str | None
    tempo_pos: float  # where in the style's tempo range (0 slow .. 1 fast)
    density_shift: float
    words: tuple[str, ...]
    style: str | None = None  # the style a mood suggests when no style word was given


MOODS: dict[str, Mood] = {m.name: m for m in (
    Mood("melancholic", "sad melancholic sorrowful mournful gloomy lonely", "minor", 0.2, -0.1,
         ("sad", "melancholic", "melancholy", "sorrowful", "mournful", "gloomy", "lonely", "wistful"), "ballad"),
    Mood("dark", "dark tense ominous scary suspense mysterious", "minor", 0.4, 0.0,
         ("dark", "tense", "ominous", "scary", "suspense", "suspenseful", "mysterious", "eerie", "sinister"),
         "cinematic"),
    Mood("happy", "happy joyful cheerful bright uplifting optimistic", "major", 0.7, 0.1,
         ("happy", "joyful", "cheerful", "bright", "uplifting", "optimistic", "sunny", "playful")),
    Mood("calm", "calm peaceful relaxing gentle soft serene dreamy", None, 0.2, -0.15,
         ("calm", "peaceful", "relaxing", "relaxed", "gentle", "soft", "serene", "dreamy", "chill", "mellow"),
         "ambient"),
    Mood("energetic", "energetic fast intense powerful driving aggressive exciting", None, 0.9, 0.2,
         ("energetic", "fast", "intense", "powerful", "driving", "aggressive", "exciting", "upbeat")),
    Mood("slow", "slow unhurried lazy", None, 0.05, -0.1, ("slow", "unhurried", "lazy", "sluggish")),
)}


# instruments ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Instrument:
    name: str
    program: int
    roles: tuple[str, ...]  # preference order
    aliases: tuple[str, ...] = ()


_M, _H, _B = ("melody", "harmony", "bass"), ("harmony", "melody", "bass"), ("bass", "harmony", "melody")
INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (
    Instrument("piano", 0, _H, ("piano", "grand piano", "acoustic piano", "keys")),
    Instrument("electric piano", 4, _H, ("electric piano", "rhodes", "e-piano", "epiano", "wurlitzer")),
    Instrument("harpsichord", 6, _H, ("harpsichord",)),
    Instrument("clavinet", 7, _H, ("clavinet", "clav")),
    Instrument("celesta", 8, _M, ("celesta",)),
    Instrument("music box", 10, _M, ("music box",)),
    Instrument("vibraphone", 11, _M, ("vibraphone",)),
    Instrument("marimba", 12, _M, ("marimba", "xylophone")),
    Instrument("organ", 19, _H, ("organ", "church organ", "hammond", "pipe organ")),
    Instrument("accordion", 21, _H, ("accordion",)),
    Instrument("harmonica", 22, _M, ("harmonica",)),
    Instrument("nylon guitar", 24, _H, ("nylon guitar", "classical guitar", "spanish guitar")),
    Instrument("acoustic guitar", 25, _H, ("acoustic guitar", "guitar")),
    Instrument("electric guitar", 27, _H, ("electric guitar", "clean guitar")),
    Instrument("overdrive guitar", 29, _H, ("overdrive guitar", "distorted guitar", "distortion guitar",
                                            "rock guitar")),
    Instrument("acoustic bass", 32, _B, ("acoustic bass", "upright bass", "double bass")),
    Instrument("electric bass", 33, _B, ("electric bass", "bass guitar", "bass")),
    Instrument("synth bass", 38, _B, ("synth bass", "808", "sub bass")),
    Instrument("violin", 40, _M, ("violin", "violins")),
    Instrument("viola", 41, _H, ("viola",)),
    Instrument("cello", 42, _B, ("cello", "cellos", "violoncello")),
    Instrument("contrabass", 43, _B, ("contrabass",)),
    Instrument("harp", 46, _H, ("harp",)),
    Instrument("strings", 48, _H, ("strings", "string ensemble", "string section", "orchestra")),
    Instrument("choir", 52, _H, ("choir", "voices", "vocals", "chorus")),
    Instrument("trumpet", 56, _M, ("trumpet", "trumpets")),
    Instrument("trombone", 57, _B, ("trombone",)),
    Instrument("tuba", 58, _B, ("tuba",)),
    Instrument("french horn", 60, _H, ("french horn", "horn", "horns")),
    Instrument("brass", 61, _H, ("brass", "brass section")),
    Instrument("saxophone", 65, _M, ("saxophone", "sax", "alto sax", "tenor sax")),
    Instrument("oboe", 68, _M, ("oboe",)),
    Instrument("bassoon", 70, _B, ("bassoon",)),
    Instrument("clarinet", 71, _M, ("clarinet",)),
    Instrument("flute", 73, _M, ("flute", "flutes")),
    Instrument("pan flute", 75, _M, ("pan flute", "panpipes")),
    Instrument("whistle", 78, _M, ("whistle",)),
    Instrument("synth lead", 80, _M, ("synth lead", "lead synth", "lead", "synth")),
    Instrument("synth pad", 89, _H, ("synth pad", "pad", "pads", "warm pad")),
    Instrument("sitar", 104, _M, ("sitar",)),
    Instrument("banjo", 105, _H, ("banjo",)),
    Instrument("kalimba", 108, _M, ("kalimba",)),
    Instrument("fiddle", 110, _M, ("fiddle",)),
    Instrument("steel drums", 114, _M, ("steel drums", "steelpan")),
    Instrument("drums", 0, ("drums",), ("drums", "drum kit", "drum", "percussion", "beat")),
)}
_ALIASES = sorted(((a, i.name) for i in INSTRUMENTS.values() for a in i.aliases), key=lambda x: -len(x[0]))


def find_instruments(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Instrument names in (lower-case) ``text``, in order of appearance, with their spans."""
    taken = [False] * len(text)
    found: list[tuple[int, str, tuple[int, int]]] = []
    for alias, name in _ALIASES:
        for m in re.finditer(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", text):
            a, b = m.span()
            if any(taken[a:b]):
                continue
            for i in range(a, b):
                taken[i] = True
            found.append((a, name, (a, b)))
    found.sort()
    names: list[str] = []
    for _, n, _ in found:
        if n not in names:
            names.append(n)
    return names, [f[2] for f in found]


def normalise_instrument(name: str) -> str:
    """``"Rhodes"`` -> ``"electric piano"``; a GM program number ``"42"`` is accepted too.

    Unknown names fall back to the closest known one by words, else piano (never raises).
    """
    n = name.strip().lower()
    if n in INSTRUMENTS:
        return n
    for alias, real in _ALIASES:
        if n == alias:
            return real
    if n.isdigit() and 0 <= int(n) < 128:
        for i in INSTRUMENTS.values():
            if i.program == int(n) and i.name != "drums":
                return i.name
        return f"program {int(n)}"
    found, _ = find_instruments(n)
    return found[0] if found else "piano"


def instrument_info(name: str) -> Instrument:
    if name.startswith("program "):
        return Instrument(name, int(name.split()[1]), _H)
    return INSTRUMENTS.get(name) or INSTRUMENTS["piano"]


# style and mood matching ---------------------------------------------------------------

def lookup_style(word: str) -> str | None:
    w = word.strip().lower()
    if w in STYLES:
        return w
    for s in STYLES.values():
        if w in s.aliases:
            return s.name
    return None


_emb_cache: dict[str, np.ndarray] = {}


def _vocab_vectors(kind: str) -> tuple[list[str], np.ndarray]:
    from engines.analysis.text import shared_embedder

    if kind not in _emb_cache:
        items = STYLES if kind == "style" else MOODS
        texts = [v.description for v in items.values()]
        _emb_cache[kind] = shared_embedder().embed(texts)
    return list(STYLES if kind == "style" else MOODS), _emb_cache[kind]


def _embed_match(words: str, kind: str, threshold: float) -> str | None:
    try:
        from engines.analysis.text import shared_embedder

        names, vecs = _vocab_vectors(kind)
        q = shared_embedder().embed_one(words)
    except Exception:  # no text model: keyword matching only (never fail on words)
        return None
    sims = vecs @ q
    i = int(np.argmax(sims))
    return names[i] if float(sims[i]) >= threshold else None


def match_style_words(words: str, *, use_embedder: bool = True, threshold: float = 0.3) -> str | None:
    toks = re.findall(r"[a-z][a-z\-]+", words.lower())
    for t in toks:
        s = lookup_style(t)
        if s:
            return s
    for a, b in zip(toks, toks[1:], strict=False):
        s = lookup_style(f"{a} {b}") or lookup_style(f"{a}-{b}") or lookup_style(a + b)
        if s:
            return s
    if use_embedder and toks:
        return _embed_match(words, "style", threshold)
    return None


def match_mood_words(words: str, *, use_embedder: bool = True, threshold: float = 0.3) -> str | None:
    toks = re.findall(r"[a-z][a-z\-]+", words.lower())
    for t in toks:
        for m in MOODS.values():
            if t in m.words:
                return m.name
    if use_embedder and toks:
        return _embed_match(words, "mood", threshold + 0.05)
    return None


def transpose_chord_symbol(symbol: str, shift: int, *, flats: bool = True) -> str:
    c = theory.parse_chord(symbol)
    m = re.match(r"[A-G][#b]?", symbol)
    assert m
    rest = symbol[m.end():]
    body, slash, _ = rest.partition("/")
    out = theory.pc_name(c.root + shift, flats=flats) + body
    if slash:
        out += "/" + theory.pc_name(c.bass + shift, flats=flats)
    return out


def style_progression(st: Style, key: theory.Key) -> list[theory.Chord]:
    if key.is_minor:
        base, ref = st.progression_minor, 9
    else:
        base, ref = st.progression_major, 0
    flats = key.tonic in (5, 10, 3, 8, 1) or (key.is_minor and key.tonic in (2, 7, 0, 5, 10))
    return [theory.parse_chord(transpose_chord_symbol(s, key.tonic - ref, flats=flats)) for s in base.split()]


# tracks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrackPlan:
    name: str
    program: int
    roles: tuple[str, ...]
    is_drum: bool = False


def plan_tracks(instruments: Sequence[str], drums: bool) -> list[TrackPlan]:
    """Assign melody / harmony / bass roles to the instruments asked for.

    Each instrument takes its preferred free role; roles left over go to the instrument
    that can best cover them (piano left hand takes the bass); extra instruments double
    their preferred role.
    """
    infos = [instrument_info(n) for n in instruments if n != "drums"] or [INSTRUMENTS["piano"]]
    roles: list[list[str]] = [[] for _ in infos]
    free = ["melody", "harmony", "bass"]
    for i, info in enumerate(infos):
        for r in info.roles:
            if r in free:
                roles[i].append(r)
                free.remove(r)
                break
    for r in list(free):
        # the instrument whose preference list ranks r highest (ties: the first)
        best = min(range(len(infos)), key=lambda i: (infos[i].roles.index(r) if r in infos[i].roles else 9, i))
        roles[best].append(r)
        free.remove(r)
    for i, info in enumerate(infos):
        if not roles[i]:
            roles[i].append(info.roles[0])
    names: list[str] = []
    plans = []
    for info, rs in zip(infos, roles, strict=True):
        nm = info.name
        k = 2
        while nm in names:
            nm, k = f"{info.name} {k}", k + 1
        names.append(nm)
        order = [r for r in ("melody", "harmony", "bass") if r in rs]
        plans.append(TrackPlan(nm, info.program, tuple(order)))
    if drums:
        plans.append(TrackPlan("drums", 0, ("drums",), True))
    return plans


# constraint layer ----------------------------------------------------------------------

def snap_pitch(pitch: int, allowed: set[int], lo: int, hi: int, prev: int | None = None) -> int:
    """Nearest pitch in ``[lo, hi]`` whose pitch class is allowed (ties toward ``prev``)."""
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    if pitch % 12 in allowed:
        return pitch
    for d in range(1, 7):
        cands = [pitch - d, pitch + d]
        if prev is not None and prev > pitch:
            cands.reverse()
        for c in cands:
            if c % 12 in allowed and lo <= c <= hi:
                return c
    return pitch


def snap_notes(notes: list[list[int]], *, key: theory.Key, chords_at: Sequence[theory.Chord],
               meter: theory.Meter, role: str) -> tuple[list[list[int]], int]:
    """Apply the constraint layer to one role's notes ``[pitch, start, end, velocity]``.

    Returns the notes and how many were moved.
    """
    lo, hi = ROLE_RANGE[role]
    scale = set(key.scale)
    tonic_triad = {key.tonic, (key.tonic + (3 if key.is_minor else 4)) % 12, (key.tonic + 7) % 12}
    spb = meter.steps_per_bar
    n_steps = len(chords_at)
    phrase_ends = _phrase_end_notes(notes, spb, n_steps) if role == "melody" else set()
    moved = 0
    out = []
    prev = None
    for i, (p, s, e, v) in enumerate(notes):
        ch = chords_at[min(max(s, 0), len(chords_at) - 1)]
        strong = s % meter.steps_per_beat == 0
        if role == "bass" and s % meter.steps_per_bar == 0:
            allowed = {ch.bass}
        elif i in phrase_ends:
            # tonic emphasis: a phrase ends on the tonic when the chord holds it, else on
            # the chord tone of the tonic triad (what makes the key audible)
            allowed = ({key.tonic} & set(ch.pcs)) or (tonic_triad & set(ch.pcs)) or set(ch.pcs)
        elif strong and role == "melody" and s % spb == 0 and tonic_triad & set(ch.pcs):
            allowed = tonic_triad & set(ch.pcs)
        elif strong:
            allowed = set(ch.pcs)
        else:
            allowed = scale | set(ch.pcs)
            # avoid the natural 7th against a chord with the raised one (harmonic minor V)
            allowed -= {pc for pc in scale if (pc + 1) % 12 in ch.pcs and pc not in ch.pcs
                        and (pc + 1) % 12 not in scale}
        q = snap_pitch(int(p), allowed, lo, hi, prev)
        moved += q != p
        out.append([q, s, e, v])
        prev = q
    return out, moved


ROLE_RANGE = {"melody": (60, 86), "harmony": (48, 76), "bass": (28, 55)}


def _phrase_end_notes(notes: Sequence[Sequence[int]], spb: int, n_steps: int) -> set[int]:
    """Indices of the last note starting in each 4-bar phrase (and the piece's last note)."""
    out: dict[int, int] = {}
    for i, n in enumerate(notes):
        phrase = min(int(n[1]) // (4 * spb), max(n_steps - 1, 0) // (4 * spb))
        if phrase not in out or int(n[1]) >= int(notes[out[phrase]][1]):
            out[phrase] = i
    return set(out.values())


# patterns ------------------------------------------------------------------------------

def _steps(pattern: str) -> list[int]:
    return [i for i, ch in enumerate(pattern) if ch in "xX"]


GROOVES_44: dict[str, dict[int, str]] = {
    "pop": {36: "x.......x.x.....", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "rock": {36: "x.....x.x.......", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "lofi": {36: "x......x..x.....", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "hiphop": {36: "x.....x...x..x..", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "house": {36: "x...x...x...x...", 39: "....x.......x...", 46: "..x...x...x...x.", 42: "xxxxxxxxxxxxxxxx"},
    "jazz": {51: "x...x..xx...x..x", 44: "....x.......x...", 36: "x..............."},
    "shuffle": {36: "x.......x.......", 38: "....x.......x...", 42: "x.xxx.xxx.xxx.xx"},
    "funk": {36: "x..x..x...x..x..", 38: "....x..x.x..x...", 42: "xxxxxxxxxxxxxxxx"},
    "bossa": {36: "x..xx..xx..xx..x", 37: "x..x..x...x..x..", 42: "x.x.x.x.x.x.x.x."},
    "reggae": {36: "........x.......", 38: "........x.......", 42: "..x...x...x...x."},
    "ballad": {36: "x.......x.......", 37: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "cinematic": {36: "x.......x.......", 45: "x.....x.x.......", 49: "x..............."},
}


def drum_pattern(groove: str, meter: theory.Meter, density: float) -> dict[int, list[tuple[int, int]]]:
    """One bar of drums: GM note -> [(step, velocity)]."""
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    out: dict[int, list[tuple[int, int]]] = {}
    if meter.num == 4 and meter.den == 4 and groove in GROOVES_44:
        for note, pat in GROOVES_44[groove].items():
            steps = _steps(pat)
            if note in (42, 44) and density < 0.3:
                steps = [s for s in steps if s % 4 == 0]
            elif note == 42 and density > 0.8 and groove not in ("jazz", "shuffle"):
                steps = list(range(16))
            out[note] = [(s, 100 if s % 4 == 0 else 75) for s in steps]
        return out
    # other meters: kick on 1 (and the middle of long bars), backbeat on the other beats,
    # hats on 8ths (compound: every 8th of each dotted beat)
    beats = list(range(0, spb, sbeat))
    kick = [0] + ([beats[len(beats) // 2]] if len(beats) >= 4 else [])
    snare = [b for b in beats if b not in kick] if len(beats) > 2 else beats[1:]
    if meter.compound:
        snare = beats[1::2] or beats[1:]
    hat = list(range(0, spb, 2)) if density >= 0.3 else beats
    ride = 51 if groove in ("jazz", "shuffle") else 42
    out[36] = [(s, 100) for s in kick]
    if groove == "cinematic":
        out[45] = [(s, 90) for s in beats]
    else:
        out[38 if groove not in ("ballad", "bossa") else 37] = [(s, 85 if i == 0 else 70)
                                                                  for i, s in enumerate(snare)]
        out[ride] = [(s, 90 if s % sbeat == 0 else 65) for s in hat]
    return out


def comp_rhythm(comp: str, meter: theory.Meter) -> list[tuple[int, int]]:
    """Chord attacks of one bar: [(step, duration)]."""
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    if meter.num == 4 and meter.den == 4:
        table = {
            "pop": [(0, 4), (4, 4), (8, 4), (12, 2), (14, 2)],
            "lofi": [(0, 7), (7, 9)],
            "jazz": [(0, 3), (6, 4), (12, 3)],
            "rock": [(i, 2) for i in range(0, 16, 2)],
            "funk": [(0, 1), (3, 1), (6, 2), (10, 1), (12, 2)],
            "skank": [(2, 2), (6, 2), (10, 2), (14, 2)],
            "bossa": [(0, 3), (3, 3), (6, 4), (10, 3), (13, 3)],
            "pad": [(0, 16)],
        }
        if comp in table:
            return table[comp]
    if comp == "pad":
        return [(0, spb)]
    if comp == "waltz" or (comp in ("pop", "jazz", "skank") and meter.num == 3):
        return [(b, sbeat) for b in range(sbeat, spb, sbeat)] or [(0, spb)]
    if comp in ("rock", "funk"):
        return [(i, 2) for i in range(0, spb, 2)]
    if comp == "lofi":
        return [(0, spb)]
    return [(b, sbeat) for b in range(0, spb, sbeat)]


def voice_chord(ch: theory.Chord, prev: Sequence[int] | None, *, lo: int = 52, hi: int = 74,
                n: int = 4, top: int | None = None) -> list[int]:
    """Close voicing of the chord's tones (root omitted first when there are too many) nearest
    the previous voicing (smooth voice leading). ``top`` (a pitch class, e.g. the key's tonic
    when the chord holds it) is preferred as the highest note, where a listener hears it."""
    pcs = [(ch.root + i) % 12 for i in ch.intervals]
    uniq = list(dict.fromkeys(pcs))
    if len(uniq) > n:
        uniq = [p for p in uniq if p != ch.root][:n] if ch.root != ch.bass else uniq[:n]
        uniq = uniq[:n]
    best, best_cost = None, 1e9
    center = 62 if not prev else float(np.mean(prev))
    for base in range(lo, hi - 6):
        voicing = []
        for pc in uniq:
            p = base + ((pc - base) % 12)
            voicing.append(p)
        voicing.sort()
        if voicing[-1] > hi:
            continue
        cost = abs(float(np.mean(voicing)) - center)
        if prev:
            cost += 0.3 * sum(min(abs(v - q) for q in prev) for v in voicing)
        if top is not None and voicing[-1] % 12 != top:
            cost += 4.0
        if cost < best_cost:
            best, best_cost = voicing, cost
    return best or sorted(60 + (pc % 12) for pc in uniq)


def arpeggio_rhythm(meter: theory.Meter, density: float = 0.5) -> list[tuple[int, int]]:
    """8th-note arpeggio; below density 0.5, one note per beat."""
    step = 2 if density >= 0.5 else meter.steps_per_beat
    return [(s, step) for s in range(0, meter.steps_per_bar, step)]


def keep_share(density: float, *, lo: float = 0.35, hi: float = 1.1) -> float:
    """Share of a pattern's attacks played at ``density`` (0 sparse .. 1 busy; 0.5 -> 0.72)."""
    return float(min(1.0, lo + (hi - lo) * min(max(density, 0.0), 1.0)))


def thin_rhythm(attacks: Sequence[tuple[Any, ...]], density: float, meter: theory.Meter
                ) -> list[tuple[Any, ...]]:
    """Keep the metrically strongest attacks of a one-bar pattern ``[(step, duration, ...)]``.

    How many: ``ceil(len * keep_share(density))``, at least one; the downbeat goes first, then
    the other beats, then 8ths, then 16ths. A kept attack lasts until the next kept one when
    the pattern had it shorter than that (the bar keeps sounding, only less often).
    """
    if not attacks:
        return []
    n = max(1, int(np.ceil(len(attacks) * keep_share(density) - 1e-9)))
    if n >= len(attacks):
        return list(attacks)
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat

    def weight(step: int) -> int:
        return 0 if step % spb == 0 else 1 if step % sbeat == 0 else 2 if step % 2 == 0 else 3

    order = sorted(range(len(attacks)), key=lambda i: (weight(int(attacks[i][0])), i))
    kept = sorted(order[:n])
    out = []
    for j, i in enumerate(kept):
        a = list(attacks[i])
        nxt = int(attacks[kept[j + 1]][0]) if j + 1 < len(kept) else spb
        a[1] = max(int(a[1]), nxt - int(a[0])) if int(a[1]) < nxt - int(a[0]) else int(a[1])
        out.append(tuple(a))
    return out


BASS_PATTERNS_44: dict[str, list[tuple[int, int, str]]] = {
    "pop": [(0, 6, "R"), (6, 2, "R"), (8, 6, "5"), (14, 2, "R")],
    "rock": [(i, 2, "R") for i in range(0, 16, 2)],
    "lofi": [(0, 6, "R"), (10, 2, "5"), (12, 4, "8")],
    "funk": [(0, 2, "R"), (3, 1, "R"), (6, 1, "8"), (8, 2, "R"), (11, 1, "5"), (14, 2, "8")],
    "edm": [(2, 2, "R"), (6, 2, "R"), (10, 2, "R"), (14, 2, "R")],
    "bossa": [(0, 3, "R"), (3, 5, "5"), (8, 3, "5"), (11, 5, "R")],
    "walking": [(0, 4, "R"), (4, 4, "3"), (8, 4, "5"), (12, 4, "A")],
    "root": [(0, 16, "R")],
}


def bass_rhythm(pattern: str, meter: theory.Meter) -> list[tuple[int, int, str]]:
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    if meter.num == 4 and meter.den == 4 and pattern in BASS_PATTERNS_44:
        return BASS_PATTERNS_44[pattern]
    if pattern in ("root",):
        return [(0, spb, "R")]
    if pattern == "waltz":
        return [(0, sbeat, "R")]
    if pattern == "walking":
        beats = list(range(0, spb, sbeat))
        degs = ["R", "3", "5", "8", "5", "3"]
        return [(b, sbeat, degs[i % len(degs)] if i < len(beats) - 1 else "A") for i, b in enumerate(beats)]
    beats = list(range(0, spb, sbeat))
    return [(b, sbeat, "R" if i % 2 == 0 else "5") for i, b in enumerate(beats)]


def bass_pitch(deg: str, ch: theory.Chord, nxt: theory.Chord, prev: int | None) -> int:
    lo, hi = 33, 52
    iv = {i % 12 for i in ch.intervals}
    if deg == "R":
        pc = ch.bass
    elif deg == "5":
        pc = (ch.root + (7 if 7 in iv else 6 if 6 in iv else 8 if 8 in iv else 0)) % 12
    elif deg == "3":
        pc = (ch.root + (3 if 3 in iv and 4 not in iv else 4 if 4 in iv else 5 if 5 in iv else 7)) % 12
    elif deg == "8":
        pc = ch.root
    else:  # approach the next chord's bass from a half step below
        pc = (nxt.bass - 1) % 12
    target = prev if prev is not None else 40
    cands = [p for p in range(lo, hi + 1) if p % 12 == pc]
    p = min(cands, key=lambda c: abs(c - target))
    if deg == "8":
        p = p + 12 if p + 12 <= hi + 7 else p
    return p
