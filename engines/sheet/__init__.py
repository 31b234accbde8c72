"""Sheet engine: audio ↔ sheet music (identify score/page/bar of a recording, follow the score).

Kept light: import :mod:`engines.sheet.engine` (torch) or :mod:`engines.sheet.library` explicitly.
"""
