"""Cue Studio engines: everything that computes. Never imports PySide6 or ``studio``."""

__version__ = "0.1.0"
