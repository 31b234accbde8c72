"""Media I/O: audio, video, MIDI, scores and SoundFont rendering.

Import the submodule you need (``engines.media.audio``, ``.video``, ``.midi``, ``.synth``,
``.score``, ``.safe``); this package itself imports nothing heavy.
"""
