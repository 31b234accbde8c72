"""Cue Studio's desktop app (PySide6). Never imports torch; engines run in the engine host."""
