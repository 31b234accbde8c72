"""Instruments from a mixture: find the user's samples and SoundFont presets that sound like
the instruments playing in a song.

Follows "Show Me the Instruments: Musical Instrument Retrieval from Mixture Audio" (ICASSP
2023): a Single-Instrument Encoder (its penultimate layer is the instrument embedding) and a
Multi-Instrument Encoder that maps a mixture to a set of embeddings in that space.

Import-light on purpose: the heavy parts live in :mod:`.engine` (public API),
:mod:`.library` (sources catalog and vector index), :mod:`.model`, :mod:`.data`,
:mod:`.train` and :mod:`.eval`.
"""

from __future__ import annotations

__all__ = ["MODEL_DIR"]

from pathlib import Path

#: where the shipped weights, config and model card live
MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "instruments"
