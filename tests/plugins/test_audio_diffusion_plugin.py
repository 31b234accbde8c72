"""The audio-diffusion plugin, offline: a tiny randomly initialised MusicLDM pipeline built
from configs and saved to a folder, run through the plugin's command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "cue_audio_diffusion"))

pytest.importorskip("transformers")


def _tiny_musicldm(folder: Path) -> Path:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, MusicLDMPipeline, UNet2DConditionModel
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        RobertaTokenizer,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=(8, 16), class_embed_type="simple_projection", projection_class_embeddings_input_dim=8,
        class_embeddings_concat=True, norm_num_groups=4, attention_head_dim=2)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1, norm_num_groups=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4)
    text_cfg = dict(bos_token_id=0, eos_token_id=2, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                    num_hidden_layers=1, pad_token_id=1, vocab_size=64, max_position_embeddings=80)
    audio_cfg = dict(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=16, depths=[1, 1],
                     num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=16, patch_size=2, patch_stride=2,
                     patch_embed_input_channels=4)
    clap = ClapModel(ClapConfig(text_config=text_cfg, audio_config=audio_cfg, projection_dim=8))
    tok_dir = folder.parent / "tok"
    tok_dir.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + list("abcdefghijklmnopqrstuvwxyz0123456789,. "))}
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(vocab_file=str(tok_dir / "vocab.json"), merges_file=str(tok_dir / "merges.txt"),
                                 model_max_length=77)
    fe = ClapFeatureExtractor(hop_length=7900)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False))
    pipe = MusicLDMPipeline(vae=vae, text_encoder=clap, tokenizer=tokenizer, feature_extractor=fe, unet=unet,
                            scheduler=sched, vocoder=vocoder)
    pipe.save_pretrained(str(folder))
    return folder


def test_describe_spells_out_the_controls() -> None:
    from cue_audio_diffusion import describe

    s = describe({"key": "Dm", "mode": "minor", "tempo": 70, "meter": "3/4", "chords": ["Dm", "Bb"],
                  "instruments": ["piano"], "style": "ballad", "mood": "melancholic"})
    assert "D minor" in s and "70 bpm" in s and "3/4" in s and "Dm Bb" in s and "piano" in s


@pytest.mark.slow
def test_command_runs_a_tiny_local_pipeline(tmp_path: Path) -> None:
    import soundfile as sf

    from engines.core.home import DataHome
    from engines.core.jobs import JobContext
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    reg = load_plugins(Registry(), extra_modules=("engines.generate.commands", "cue_audio_diffusion"))
    assert "generate.audio" in reg
    ckpt = _tiny_musicldm(tmp_path / "ckpt")
    ctx = JobContext(home=DataHome(tmp_path / "home"))
    r = reg.run("generate.audio", ctx, {"checkpoint": str(ckpt), "text": "calm piano in A minor, 80 bpm",
                                        "seconds": 1.0, "steps": 2, "out": str(tmp_path / "out")})
    y, sr = sf.read(r.data["wav"])
    assert sr == 16000 and len(y) > 0
    assert "A minor" in r.data["prompt"] and r.data["pipeline"] == "MusicLDMPipeline"


def test_bad_checkpoint_folder(tmp_path: Path) -> None:
    from engines.core.errors import EngineError
    from engines.core.home import DataHome
    from engines.core.jobs import JobContext
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    reg = load_plugins(Registry(), extra_modules=("engines.generate.commands", "cue_audio_diffusion"))
    ctx = JobContext(home=DataHome(tmp_path / "home"))
    with pytest.raises(EngineError, match="model_index.json"):
        reg.run("generate.audio", ctx, {"checkpoint": str(tmp_path)})
