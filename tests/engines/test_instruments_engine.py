"""The instrument encoders, data builder and metrics (debug model, no files beyond tmp)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.core.errors import ModelError
from engines.instruments import data as D
from engines.instruments.engine import Engine
from engines.instruments.eval import multilabel_metrics
from engines.instruments.model import InstrumentModel, ModelConfig, load, save
from engines.instruments.train import eer, hungarian_loss


def test_debug_model_is_tiny_seeded_and_shaped() -> None:
    a, b = Engine.from_pretrained("debug"), Engine.from_pretrained("debug")
    rng = np.random.default_rng(0)
    clips = (0.1 * rng.standard_normal((3, a.window))).astype(np.float32)
    ea, eb = a.embed_clips(clips), b.embed_clips(clips)
    assert ea.shape == (3, a.cfg.emb_dim) and np.allclose(ea, eb)
    assert np.allclose(np.linalg.norm(ea, axis=1), 1, atol=1e-4)
    emb, prob, note = a.encode_mixtures(clips)
    assert emb.shape == (3, a.cfg.slots, a.cfg.emb_dim) and prob.shape == note.shape == (3, a.cfg.slots)
    assert sum(p.numel() for p in a.model.parameters()) < 50_000


def test_detect_skips_silence_and_finds_something_in_sound() -> None:
    e = Engine.from_pretrained("debug")
    assert e.detect(np.zeros(e.sr * 7, np.float32)) == []
    t = np.arange(e.sr * 7) / e.sr
    found = e.detect((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    assert found and all(abs(float(np.linalg.norm(d.embedding)) - 1) < 1e-4 for d in found)


def test_save_load_round_trip_and_missing_model(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(name="t", n_mels=32, emb_dim=8, single_channels=(4, 4, 4, 4), multi_channels=(4, 4, 4, 4),
                      multi_hidden=8, slots=2, n_classes=3)
    m = InstrumentModel(cfg).eval()
    save(m, tmp_path / "m")
    back = load(tmp_path / "m")
    x = torch.randn(2, cfg.samples)
    with torch.no_grad():
        assert torch.allclose(m.single(x), back.single(x), atol=1e-5)
    assert Engine.from_pretrained(tmp_path / "m").cfg.name == "t"
    with pytest.raises(ModelError, match="nothing-here"):
        Engine.from_pretrained(tmp_path / "nothing-here")


def test_phrases_stay_in_range_and_render() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        notes = D.make_phrase(rng, 40, 70)
        assert notes and all(40 <= n.pitch <= 70 + 11 for n in notes)  # chords may stack above the root
        assert all(0 <= n.start < D.SEG_SECONDS and n.end > n.start for n in notes)
    drums = D.make_phrase(rng, 35, 81, drum=True)
    assert {36, 38} & {n.pitch for n in drums}
    (clips,) = D.render_probes(str(D.soundfont_path("timgm6mb")), [(0, 33, "Fingered Bass")])
    assert clips.shape == (2, D.SEG) and np.max(np.abs(clips.astype(np.float32))) > 0.5
    assert D.preset_range(0, 33, "Fingered Bass")[1] <= 57 and D.family(0, 33) == "bass"


def test_hungarian_loss_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(1, 4, 8), dim=-1)
    targets = emb[0, [2, 0]].clone()
    logit, pitch = torch.zeros(1, 4), torch.full((1, 4), 60.0)
    tp = torch.tensor([60.0, float("nan")])
    l1, cos1 = hungarian_loss(emb, logit, pitch, [targets], [tp])
    l2, cos2 = hungarian_loss(emb, logit, pitch, [targets.flip(0)], [tp.flip(0)])
    assert abs(float(l1) - float(l2)) < 1e-6 and cos1 == pytest.approx(1.0, abs=1e-5)


def test_metrics_and_eer() -> None:
    truth = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]], bool)
    perfect = multilabel_metrics(truth.copy(), truth.astype(float), truth)
    assert perfect["f1_macro"] == 1 and perfect["map_weighted"] == 1
    wrong = multilabel_metrics(~truth, (~truth).astype(float), truth)
    assert wrong["f1_macro"] == 0
    assert eer(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0])) == 0


def test_mel_filterbank_matches_librosa() -> None:
    import librosa

    from engines.instruments.model import mel_filterbank

    for n_fft, n_mels in ((1024, 64), (512, 32)):
        ours = mel_filterbank(sr=16000, n_fft=n_fft, n_mels=n_mels, fmin=30.0, fmax=8000.0)
        ref = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels, fmin=30.0, fmax=8000.0)
        assert ours.shape == ref.shape and np.allclose(ours, ref, atol=1e-7)


def test_mel_cache_reproduces_the_front_end_and_mixes_in_the_power_domain() -> None:
    """The GPU training path (quantised mel cache, mixtures summed in power) must feed the
    encoders what the audio front end gives for real clips and (approximately) real mixtures."""
    from engines.instruments.model import LogMel
    from engines.instruments.train import mel_input, mel_mix

    rng = np.random.default_rng(3)
    t = np.arange(D.SEG) / D.SR
    a = (0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)).astype(np.float32)
    b = (0.3 * rng.standard_normal(D.SEG) * (t > 1.5)).astype(np.float32)  # noise burst, other register
    q, peak = D.mel_db(np.stack([a, b]))
    assert q.dtype == np.uint8 and q.shape[0] == 2
    fe = LogMel(ModelConfig())
    real = fe(torch.from_numpy(np.stack([a, b])))
    # a single clip: the cache gives the front end's input to within the 1 dB rounding
    assert torch.allclose(mel_input(torch.from_numpy(q)), real, atol=0.5 / 40 + 1e-4)
    # a mixture -6 dB / 0 dB: power-domain sum vs the front end on the summed audio
    mixed = fe(torch.from_numpy((10 ** (-6 / 20) * a + b)[None]))
    approx = mel_mix(torch.from_numpy(q), torch.from_numpy(peak), torch.tensor([[0, 1]]),
                     torch.tensor([[True, True]]), torch.tensor([[-6.0, 0.0]]))
    assert approx.shape == mixed.shape
    assert float((approx - mixed).abs().mean()) < 0.05  # mean error under 2 dB
