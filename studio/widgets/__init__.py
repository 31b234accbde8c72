"""Reusable widgets: waveform, player, jobs dock."""
