"""A small, safe reader for the single-staff melodic subset of LilyPond.

Used to turn the LilyPond documentation's snippets (``lily-*.ly`` next to the PNG LilyPond
engraved from them) into notes we can synthesise, so that the LilyPond engraving style can be
a held-out evaluation of the sheet engine (:mod:`engines.sheet.eval_lilypond`).

What it reads
-------------
``\\relative`` (with or without a start pitch) and absolute pitches with ``'`` / ``,`` octave
marks, ``\\fixed``, Dutch note names (``is``/``es``, ``isis``/``eses``, ``as``, ``es``),
durations 1..128 and ``\\breve`` with dots and ``*n/m`` multipliers, rests ``r``, whole-bar
rests ``R``, spacers ``s``, ties ``~``, bar checks ``|`` (a failing bar check rejects the
snippet: the durations would be wrong), ``\\time``, ``\\partial``, ``\\key``, ``\\clef``,
``\\tuplet`` / ``\\times``, one ``\\new Staff``/``\\new Voice`` wrapper, and ignores what does not
change the notes: slurs, beams, articulations, dynamics, fingerings, text scripts, ``\\bar``
and a list of layout switches (``\\stemUp``, ``\\break``...).

Everything else (chords, ``<< >>``, lyrics, drums, Scheme ``#``, ``\\override``, repeats,
grace notes, ``\\markup``, other languages...) raises :class:`LilyPondError` whose
``reason`` is a short stable key, so a caller can count why snippets were skipped. Nothing is
evaluated or included: the text is tokenised by one regular expression and parsed by recursive
descent with bounded size and depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from engines.core.errors import InputError

MAX_CHARS = 200_000
MAX_DEPTH = 40

#: semitones above C of the natural steps c d e f g a b
_STEP_SEMI = (0, 2, 4, 5, 7, 9, 11)
_STEPS = "cdefgab"


def _note_names() -> dict[str, tuple[int, int]]:
    names: dict[str, tuple[int, int]] = {}
    for step, base in enumerate(_STEPS):
        names[base] = (step, 0)
        names[base + "is"] = (step, 1)
        names[base + "isis"] = (step, 2)
        names[base + "es"] = (step, -1)
        names[base + "eses"] = (step, -2)
    names["es"] = (2, -1)
    names["eses"] = (2, -2)
    names["ees"] = (2, -1)
    names["eeses"] = (2, -2)
    names["as"] = (5, -1)
    names["ases"] = (5, -2)
    names["asas"] = (5, -2)
    names["aes"] = (5, -1)
    names["aeses"] = (5, -2)
    return names


NOTE_NAMES = _note_names()

#: commands without arguments that change nothing we read (layout, articulations, dynamics)
IGNORED = frozenset("""
stemUp stemDown stemNeutral slurUp slurDown slurNeutral slurDashed slurDotted slurSolid
tieUp tieDown tieNeutral tieDashed tieDotted tieSolid phrasingSlurUp phrasingSlurDown
phrasingSlurNeutral dynamicUp dynamicDown dynamicNeutral autoBeamOff autoBeamOn break noBreak
pageBreak noPageBreak noBeam voiceOne voiceTwo voiceThree voiceFour oneVoice shiftOn shiftOff
textLengthOn textLengthOff hideNotes unHideNotes cadenzaOn cadenzaOff
accent espressivo marcato portato staccatissimo staccato tenuto fermata shortfermata longfermata
trill prall mordent turn reverseturn upbow downbow flageolet open stopped snappizzicato thumb
segno coda varcoda lheel rheel ltoe rtoe arpeggio glissando laissezVibrer repeatTie
ppppp pppp ppp pp p mp mf f ff fff ffff fffff fp sf sff sfz sfp spp rfz n
cresc decresc dim endcresc enddecresc enddim
startTrillSpan stopTrillSpan startTextSpan stopTextSpan
""".split())
#: the one-token argument is a string or a word (``\\bar "|."``, ``\\mark \\default`` is not here)
IGNORED_WITH_STRING = frozenset({"bar"})
#: lilypond-book / file bookkeeping skipped with their argument
SKIPPED_TOPLEVEL_ARG = frozenset({"version", "sourcefilename", "sourcefileline", "include"})
SKIPPED_TOPLEVEL_BLOCK = frozenset({"header", "paper", "layout", "midi"})
CLEFS = frozenset({"treble", "violin", "G", "G2", "bass", "F", "alto", "C", "tenor", "soprano",
                   "mezzosoprano", "baritone", "varbaritone", "subbass", "french", "treble_8",
                   "bass_8", "treble^8", "bass^8", "GG"})
MODES = frozenset({"major", "minor", "ionian", "dorian", "phrygian", "lydian", "mixolydian",
                   "aeolian", "locrian"})

_TOKEN = re.compile(r"""
 (?P<ws>\s+)
|(?P<string>"(?:\\.|[^"\\])*")
|(?P<dbl><<|>>)
|(?P<cmd>\\[A-Za-z]+|\\[()<>!\[\]\\])
|(?P<word>[A-Za-z]+)
|(?P<num>\d+)
|(?P<sym>[{}|~()\[\]<>'.,!?=*/#:^_\-+$])
|(?P<other>.)
""", re.VERBOSE | re.DOTALL)


class LilyPondError(InputError):
    """A snippet outside the subset; ``reason`` is a short key for counting."""

    def __init__(self, reason: str, message: str = "", *, path: str | Path | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason, path=path)


@dataclass(frozen=True)
class Note:
    """One sounding note (ties merged). Times in whole notes from the start."""

    pitch: int  # MIDI
    onset: Fraction
    duration: Fraction
    bar: int  # 1-based; 0 for a pickup (``\\partial``)


@dataclass
class Snippet:
    notes: list[Note] = field(default_factory=list)
    #: ``(numerator, denominator)`` of every ``\\time`` met, first one first (empty: 4/4 implied)
    times: list[tuple[int, int]] = field(default_factory=list)
    #: ``(tonic MIDI pitch class, mode)`` of every ``\\key``
    keys: list[tuple[int, str]] = field(default_factory=list)
    clefs: list[str] = field(default_factory=list)
    rests: int = 0
    bar_checks: int = 0
    length: Fraction = Fraction(0)

    def seconds(self, *, bpm: float = 120.0) -> list[tuple[int, float, float]]:
        """``(pitch, start_s, end_s)`` of each note at ``bpm`` quarter notes a minute."""
        whole = 240.0 / bpm
        return [(n.pitch, float(n.onset) * whole, float(n.onset + n.duration) * whole) for n in self.notes]


# --------------------------------------------------------------------------- source text

def strip_comments(text: str) -> str:
    """Remove ``%{ ... %}`` and ``% ...`` comments (outside strings)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("%{", i):
            j = text.find("%}", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "%":
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def book_music(text: str) -> str:
    """The music of a lilypond-book file: the file minus its generated preamble.

    The preamble (``\\include``, ``#(ly:set-option ...)``, ``\\paper``, ``\\layout``) is
    skipped by the parser itself; this only drops the ``#(ly:set-option ...)`` line, the one
    Scheme form every generated file has.
    """
    return re.sub(r"^#\(ly:set-option [^\n]*\)\s*$", "", text, flags=re.M)


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[_Tok]:
    if len(text) > MAX_CHARS:
        raise LilyPondError("too_long", f"snippet longer than {MAX_CHARS} characters")
    toks = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


# --------------------------------------------------------------------------- parser

def _duration(num: str) -> Fraction:
    v = int(num)
    if v not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise LilyPondError("bad_duration", f"duration {num}")
    return Fraction(1, v)


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0
        self.t = Fraction(0)
        self.dur = Fraction(1, 4)
        self.scale = Fraction(1)
        #: diatonic reference ``octave * 7 + step`` in relative mode, else None
        self.ref: int | None = None
        #: octave offset added in absolute mode (``\\fixed``)
        self.fixed = 0
        self.measure = Fraction(1)
        self.bar_origin = Fraction(0)
        self.bar_base = 1
        self.tie_open = False
        self.staves = 0
        self.last: tuple[int, int] | None = None
        #: variable name -> index of its music's first token, or the reason it cannot be read
        self.variables: dict[str, int | str] = {}
        self.out = Snippet()

    # helpers ------------------------------------------------------------------
    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise LilyPondError("unexpected_end", "snippet ends in the middle of an expression")
        self.i += 1
        return tok

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.next()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise LilyPondError("syntax", f"expected {text or kind} at {tok.pos}, got {tok.text!r}")
        return tok

    def is_sym(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind == "sym" and tok.text == text

    def skip_block(self) -> None:
        """Skip a balanced ``{ ... }`` (headers, paper and layout blocks)."""
        self.expect("sym", "{")
        level = 1
        while level:
            tok = self.next()
            if tok.kind == "sym" and tok.text == "{":
                level += 1
            elif tok.kind == "sym" and tok.text == "}":
                level -= 1

    # bars ---------------------------------------------------------------------
    def bar_at(self, t: Fraction) -> int:
        k = (t - self.bar_origin) / self.measure
        return self.bar_base + int(k.__floor__())

    def set_time(self, num: int, den: int) -> None:
        # a meter change takes effect at the current (bar) position
        self.bar_base = max(self.bar_at(self.t), 1) if self.t > 0 else 1
        if self.t > 0 and (self.t - self.bar_origin) % self.measure != 0:
            self.bar_base += 1
        self.bar_origin = self.t
        self.measure = Fraction(num, den)

    # top level ----------------------------------------------------------------
    def parse(self) -> Snippet:
        music = False
        while self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            if tok.kind == "cmd" and tok.text[1:] in SKIPPED_TOPLEVEL_ARG:
                self.i += 1
                self.next()
            elif tok.kind == "cmd" and tok.text[1:] in SKIPPED_TOPLEVEL_BLOCK:
                self.i += 1
                self.skip_block()
            elif tok.kind == "word" and self.is_sym("=", 1):
                self.define(tok.text)
            elif tok.kind == "cmd" and tok.text == "\\score":
                self.i += 1
                self.expect("sym", "{")
                while not self.is_sym("}"):
                    t2 = self.peek()
                    if t2 is not None and t2.kind == "cmd" and t2.text[1:] in SKIPPED_TOPLEVEL_BLOCK:
                        self.i += 1
                        self.skip_block()
                    else:
                        self.music()
                        music = True
                self.expect("sym", "}")
            else:
                if music:
                    raise LilyPondError("several_expressions", "more than one top-level music expression")
                self.music()
                music = True
        if not music:
            raise LilyPondError("no_music", "no music expression")
        self.out.length = self.t
        return self.out

    def define(self, name: str) -> None:
        """``name = music``: remember where the music starts; skip it with a scratch parse."""
        self.i += 2
        start = self.i
        scratch = _Parser(self.toks)
        scratch.i = start
        scratch.variables = self.variables
        try:
            scratch.music()
        except LilyPondError as exc:
            self.variables[name] = exc.reason
            raise LilyPondError(exc.reason, f"in variable {name}: {exc}") from None
        self.variables[name] = start
        self.i = scratch.i

    def expand(self, name: str) -> None:
        start = self.variables[name]
        assert isinstance(start, int)
        saved = self.i
        self.i = start
        self.music()
        self.i = saved

    # music --------------------------------------------------------------------
    def music(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LilyPondError("too_deep", "expressions nested too deeply")
        try:
            self._music()
        finally:
            self.depth -= 1

    def _music(self) -> None:
        tok = self.next()
        if tok.kind == "sym" and tok.text == "{":
            while not self.is_sym("}"):
                if self.peek() is None:
                    raise LilyPondError("unbalanced", "missing }")
                self.element()
            self.i += 1
            return
        if tok.kind == "cmd":
            name = tok.text[1:]
            if name == "relative":
                saved = (self.ref, self.fixed)
                if self.is_sym("{") or (self.peek() is not None and self.peek().kind == "cmd"):  # type: ignore[union-attr]
                    self.ref = 3 * 7 + 3  # f: the first note's octave marks read as absolute
                else:
                    self.ref = self.absolute_pitch()[0]
                self.fixed = 0
                self.music()
                self.ref, self.fixed = saved
                return
            if name == "fixed":
                saved = (self.ref, self.fixed)
                n, _ = self.absolute_pitch()
                self.ref, self.fixed = None, n // 7 - 3
                self.music()
                self.ref, self.fixed = saved
                return
            if name == "new":
                ctx = self.expect("word").text
                if ctx not in ("Staff", "Voice"):
                    raise LilyPondError(f"context_{ctx}", f"\\new {ctx}")
                if ctx == "Staff":
                    self.staves += 1
                    if self.staves > 1:
                        raise LilyPondError("several_staves", "more than one staff")
                if self.is_sym("="):
                    self.i += 1
                    self.expect("string")
                t2 = self.peek()
                if t2 is not None and t2.kind == "cmd" and t2.text == "\\with":
                    raise LilyPondError("cmd_with", "\\with")
                self.music()
                return
            if name in ("tuplet", "times"):
                num = int(self.expect("num").text)
                self.expect("sym", "/")
                den = int(self.expect("num").text)
                if num == 0 or den == 0:
                    raise LilyPondError("bad_tuplet", "tuplet with 0")
                if name == "tuplet" and self.peek() is not None and self.peek().kind == "num":  # type: ignore[union-attr]
                    self.i += 1  # the tuplet-span duration: layout only
                factor = Fraction(den, num) if name == "tuplet" else Fraction(num, den)
                saved_scale = self.scale
                self.scale = self.scale * factor
                self.music()
                self.scale = saved_scale
                return
        self.i -= 1
        self.element()

    def element(self) -> None:
        """One element of a sequence: a note, rest, command, bar check or nested music."""
        tok = self.peek()
        assert tok is not None
        if tok.kind == "sym":
            if tok.text == "{":
                self.music()
                return
            if tok.text == "|":
                self.i += 1
                self.out.bar_checks += 1
                if (self.t - self.bar_origin) % self.measure != 0:
                    raise LilyPondError("bar_check_failed", f"bar check at {tok.pos} is not on a barline")
                return
            if tok.text == "~":
                self.i += 1
                self.tie_open = True
                return
            if tok.text in "()[]":
                self.i += 1
                return
            if tok.text == "<":
                raise LilyPondError("chord", "chords are not read")
            if tok.text in "-^_":
                self.post_event()
                return
            if tok.text == "#":
                raise LilyPondError("scheme", "Scheme expression")
            raise LilyPondError("syntax", f"unexpected {tok.text!r} at {tok.pos}")
        if tok.kind == "dbl":
            raise LilyPondError("simultaneous", "<< >> is not read")
        if tok.kind == "string":
            raise LilyPondError("markup", "bare string")
        if tok.kind == "num":
            if self.last is None:
                raise LilyPondError("syntax", f"a duration with no note before it at {tok.pos}")
            self.sounding(*self.last)  # ``c4 4 8``: a bare duration repeats the last note
            return
        if tok.kind == "other":
            raise LilyPondError("bad_character", f"unexpected {tok.text!r} at {tok.pos}")
        if tok.kind == "word":
            self.note()
            return
        # commands
        name = tok.text[1:]
        if tok.text in ("\\(", "\\)", "\\<", "\\>", "\\!", "\\[", "\\]"):
            self.i += 1
            return
        if name in IGNORED:
            self.i += 1
            return
        if name in SKIPPED_TOPLEVEL_ARG:
            self.i += 2
            return
        if name in self.variables:
            self.i += 1
            self.expand(name)
            return
        if name in ("override", "set", "once", "revert", "unset"):
            self.i += 1
            self.property_setting(name)
            return
        if name == "tempo":
            self.i += 1
            if self.peek() is not None and self.peek().kind == "string":  # type: ignore[union-attr]
                self.i += 1
            if self.peek() is not None and self.peek().kind == "num":  # type: ignore[union-attr]
                self.duration_after(None)
                self.expect("sym", "=")
                self.expect("num")
                if self.is_sym("-"):
                    self.i += 1
                    self.expect("num")
            return
        if name == "repeat":
            self.i += 1
            kind = self.expect("word").text
            self.expect("num")
            if kind not in ("volta", "unfold"):
                raise LilyPondError(f"repeat_{kind}", f"\\repeat {kind}")
            t2 = self.peek()
            times = int(self.toks[self.i - 1].text) if kind == "unfold" else 1
            start = self.i
            for _ in range(max(1, min(times, 16))):
                self.i = start
                self.music()
            t2 = self.peek()
            if t2 is not None and t2.kind == "cmd" and t2.text == "\\alternative":
                raise LilyPondError("cmd_alternative", "\\alternative")
            return
        if name in IGNORED_WITH_STRING:
            self.i += 1
            self.expect("string")
            return
        if name in ("relative", "fixed", "new", "tuplet", "times"):
            self.music()
            return
        if name == "time":
            self.i += 1
            num = self.expect("num").text
            while self.is_sym("+"):  # 2+3/8 style
                self.i += 1
                num = str(int(num) + int(self.expect("num").text))
            self.expect("sym", "/")
            den = self.expect("num").text
            n, d = int(num), int(den)
            if n <= 0 or d not in (1, 2, 4, 8, 16, 32, 64):
                raise LilyPondError("bad_time", f"\\time {num}/{den}")
            self.out.times.append((n, d))
            self.set_time(n, d)
            return
        if name == "partial":
            self.i += 1
            saved_dur = self.dur  # \\partial does not change the running duration
            pickup = self.duration_after(None)
            self.dur = saved_dur
            if pickup is None:
                raise LilyPondError("syntax", "\\partial without a duration")
            self.bar_origin = self.t + pickup
            self.bar_base = 1
            return
        if name == "key":
            self.i += 1
            w = self.expect("word").text
            if w not in NOTE_NAMES:
                raise LilyPondError("bad_key", f"\\key {w}")
            mode = self.expect("cmd").text[1:]
            if mode not in MODES:
                raise LilyPondError("bad_key", f"\\key mode {mode}")
            step, alt = NOTE_NAMES[w]
            self.out.keys.append(((_STEP_SEMI[step] + alt) % 12, mode))
            return
        if name == "clef":
            self.i += 1
            t2 = self.next()
            c = t2.text.strip('"') if t2.kind in ("string", "word") else ""
            if c not in CLEFS:
                raise LilyPondError("bad_clef", f"\\clef {t2.text}")
            self.out.clefs.append(c)
            return
        raise LilyPondError(f"cmd_{name}", f"unsupported command \\{name}")

    def scheme_value(self) -> None:
        """Skip one Scheme value after ``#``: an atom, a string or a balanced list (never run)."""
        self.expect("sym", "#")
        while self.is_sym("#") or self.is_sym("'") or self.is_sym("$"):
            self.i += 1
        tok = self.next()
        if tok.kind == "sym" and tok.text == "(":
            level = 1
            while level:
                t2 = self.next()
                if t2.kind == "sym" and t2.text == "(":
                    level += 1
                elif t2.kind == "sym" and t2.text == ")":
                    level -= 1
        elif tok.kind == "sym" and tok.text == "-":
            self.expect("num")
        if self.is_sym(".") and self.peek(1) is not None and self.peek(1).kind == "num":  # type: ignore[union-attr]
            self.i += 2  # 1.5

    def property_setting(self, name: str) -> None:
        """``\\override Staff.Grob.prop = #value``, ``\\set ctx.prop = ...``, ``\\revert``:
        layout settings; the value must be a Scheme value, a number or a string."""
        if name == "once":
            t2 = self.next()
            if t2.kind != "cmd" or t2.text[1:] not in ("override", "set", "revert", "unset"):
                raise LilyPondError("cmd_once", "\\once before something else than a setting")
            name = t2.text[1:]
        self.expect("word")
        while self.is_sym(".") or (self.is_sym("-") and self.peek(1) is not None
                                   and self.peek(1).kind == "word"):  # type: ignore[union-attr]
            self.i += 1
            self.expect("word")
        while self.is_sym("#"):  # Grob.details.#'prop
            self.scheme_value()
        if name in ("revert", "unset"):
            return
        self.expect("sym", "=")
        tok = self.peek()
        if tok is not None and tok.kind == "sym" and tok.text == "#":
            self.scheme_value()
        elif tok is not None and tok.kind in ("num", "string", "word"):
            self.i += 1
        else:
            raise LilyPondError(f"{name}_value", f"\\{name} with a value that is not read")

    def post_event(self) -> None:
        """``-.``, ``^"text"``, ``_\\p``, ``-1``: articulations, text and fingering (ignored)."""
        self.i += 1
        tok = self.next()
        if tok.kind == "sym" and tok.text in ".>^_!-+|":
            return
        if tok.kind in ("num", "string"):
            return
        if tok.kind == "cmd" and (tok.text[1:] in IGNORED or tok.text in ("\\<", "\\>", "\\!")):
            return
        if tok.kind == "cmd" and tok.text == "\\markup":
            raise LilyPondError("cmd_markup", "\\markup")
        raise LilyPondError("syntax", f"unexpected {tok.text!r} after a note at {tok.pos}")

    def absolute_pitch(self) -> tuple[int, int]:
        """A pitch word with octave marks read absolutely: ``(diatonic number, alteration)``."""
        w = self.expect("word").text
        if w not in NOTE_NAMES:
            raise LilyPondError("bad_pitch", f"pitch {w!r}")
        step, alt = NOTE_NAMES[w]
        return (3 + self.octave_marks()) * 7 + step, alt

    def octave_marks(self) -> int:
        k = 0
        while self.is_sym("'") or self.is_sym(","):
            k += 1 if self.next().text == "'" else -1
        return k

    def duration_after(self, default: Fraction | None) -> Fraction | None:
        tok = self.peek()
        if tok is not None and tok.kind == "num":
            self.i += 1
            base = _duration(tok.text)
        elif tok is not None and tok.kind == "cmd" and tok.text in ("\\breve", "\\longa"):
            self.i += 1
            base = Fraction(2) if tok.text == "\\breve" else Fraction(4)
        else:
            return default
        dots = 0
        while self.is_sym("."):
            self.i += 1
            dots += 1
        d = base * (2 - Fraction(1, 2 ** dots))
        while self.is_sym("*"):
            self.i += 1
            mul = Fraction(int(self.expect("num").text))
            if self.is_sym("/"):
                self.i += 1
                mul /= int(self.expect("num").text)
            d *= mul
        self.dur = d
        return d

    def note(self) -> None:
        w = self.next().text
        if w in ("r", "R", "s"):
            d = self.duration_after(self.dur)
            assert d is not None
            if w != "s":
                self.out.rests += 1
            self.t += d * (1 if w == "R" else self.scale)
            self.tie_open = False
            return
        if w not in NOTE_NAMES:
            raise LilyPondError("bad_pitch", f"{w!r} is not a note name")
        step, alt = NOTE_NAMES[w]
        marks = self.octave_marks()
        if self.ref is None:
            n = (3 + self.fixed + marks) * 7 + step
        else:
            n = (self.ref // 7) * 7 + step
            while n - self.ref > 3:
                n -= 7
            while self.ref - n > 3:
                n += 7
            n += 7 * marks
            self.ref = n
        while self.is_sym("!") or self.is_sym("?"):
            self.i += 1
        if self.is_sym("="):  # octave check: layout only
            self.i += 1
            self.octave_marks()
        self.sounding(n, alt)

    def sounding(self, n: int, alt: int) -> None:
        """The duration and post-events of a note of diatonic number ``n``, then the note."""
        self.last = (n, alt)
        d = self.duration_after(self.dur)
        assert d is not None
        if self.is_sym(":"):
            raise LilyPondError("tremolo", "tremolo repeats are not read")
        d = d * self.scale
        pitch = 12 * (n // 7 + 1) + _STEP_SEMI[n % 7] + alt
        if not 0 <= pitch <= 127:
            raise LilyPondError("bad_pitch", f"pitch out of MIDI range ({pitch})")
        notes = self.out.notes
        if self.tie_open and notes and notes[-1].pitch == pitch and notes[-1].onset + notes[-1].duration == self.t:
            last = notes[-1]
            notes[-1] = Note(pitch, last.onset, last.duration + d, last.bar)
        else:
            notes.append(Note(pitch, self.t, d, max(0, self.bar_at(self.t))))
        self.tie_open = False
        self.t += d


def parse(text: str, *, path: str | Path | None = None) -> Snippet:
    """Parse LilyPond source (the subset in the module docstring) into notes.

    Raises
    ------
    LilyPondError
        with ``reason`` naming what is outside the subset.
    """
    try:
        toks = tokenize(book_music(strip_comments(text)))
        return _Parser(toks).parse()
    except LilyPondError as exc:
        if path is not None and exc.path is None:
            raise LilyPondError(exc.reason, str(exc), path=path) from None
        raise
    except RecursionError:
        raise LilyPondError("too_deep", "expressions nested too deeply", path=path) from None


def parse_file(path: str | Path) -> Snippet:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise LilyPondError("unreadable", f"cannot read ({exc.strerror})", path=p) from None
    if len(raw) > MAX_CHARS:
        raise LilyPondError("too_long", f"larger than {MAX_CHARS} bytes", path=p)
    return parse(raw.decode("utf-8", errors="replace"), path=p)
