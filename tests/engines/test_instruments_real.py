"""Mixtures of real recorded samples (Debian's sonic-pi-samples), searched with the shipped model.

Skipped where the samples (``apt-get install sonic-pi-samples``) or the shipped weights are
missing. Quality numbers come from ``bench/instruments_eval.py``; this only checks that real
recordings go through the product path and are found better than chance.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.instruments import MODEL_DIR

SAMPLES = Path("/usr/share/sonic-pi/samples")
PICK = ("bass_hard_c", "bass_voxy_c", "drum_bass_hard", "drum_snare_hard", "drum_cymbal_open", "elec_bell",
        "elec_blup", "guit_harmonics", "guit_e_fifths", "ambi_choir", "ambi_piano", "perc_bell", "tabla_na",
        "vinyl_hiss", "loop_amen", "misc_burp")

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir() or not (MODEL_DIR / "model.safetensors").is_file(),
    reason="needs sonic-pi-samples (apt-get install sonic-pi-samples) and the shipped instrument model",
)


def test_mixtures_of_real_samples_find_their_parts(tmp_path: Path) -> None:
    from engines.core.home import DataHome
    from engines.instruments.engine import Engine, FindRequest
    from engines.instruments.library import InstrumentLibrary
    from engines.media.audio import load_audio

    folder = tmp_path / "real"
    folder.mkdir()
    files = [SAMPLES / f"{n}.flac" for n in PICK if (SAMPLES / f"{n}.flac").is_file()]
    assert len(files) >= 10
    for f in files:
        shutil.copyfile(f, folder / f.name)
    engine = Engine.from_pretrained("default")
    rng = np.random.default_rng(0)
    with InstrumentLibrary(DataHome(tmp_path / "home"), engine) as lib:
        report = lib.add([folder])
        assert report.added == len(files) and not report.skipped
        hits = chance = 0.0
        for m in range(6):
            pair = rng.choice(len(files), size=2, replace=False)
            parts = []
            for i in pair:
                y = load_audio(files[i], sr=44100, mono=True, max_duration=3.0)
                parts.append(np.pad(y, (0, 44100 * 3 - len(y))) / max(1e-6, float(np.max(np.abs(y)))))
            mix = (parts[0] * 0.5 + parts[1] * 0.5).astype(np.float32)
            wav = tmp_path / f"mix{m}.wav"
            sf.write(wav, mix, 44100)
            result = engine.find(FindRequest(str(wav), top_k=3), library=lib)
            assert result.slots
            found = {Path(mt.sample_path).name for s in result.slots for mt in s.matches}
            assert all(mt.kind == "sample" for s in result.slots for mt in s.matches)
            hits += sum(files[i].name in found for i in pair)
            chance += 2 * len(found) / len(files)
        assert hits > chance, (hits, chance)
