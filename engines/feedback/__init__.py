"""Preferences: A/B pairs of results, votes kept safe, export for RLHF/DPO, learning from them.

Parts:

- :mod:`engines.feedback.store` — the preference store (SQLite + content-hashed blobs);
- :mod:`engines.feedback.recent` — the log of recent work the rating queue is filled from;
- :mod:`engines.feedback.queue` — building pairs from recent work;
- :mod:`engines.feedback.export` — TRL JSONL, bundles, CSV and bundle import;
- :mod:`engines.feedback.commands` — the ``prefs.*`` commands (``studio prefs VERB``).

Importing this package is cheap (no numpy, no torch).
"""
