"""Generate engine: music from text and MIDI (key, tempo, chords, meter, instruments) and
arrangement of the missing tracks of a MIDI file.

Light to import; the public API lives in :mod:`engines.generate.engine`
(``Engine``, ``GenerateRequest``, ``GenerateResult``) and the commands in
:mod:`engines.generate.commands`. See ``docs/generate.md``.
"""
