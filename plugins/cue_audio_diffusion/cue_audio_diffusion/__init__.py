"""Cue Studio plugin: audio from text with a diffusers pipeline from a local checkpoint.

For users with a GPU and a checkpoint folder (saved with ``save_pretrained`` or downloaded
by themselves) of AudioLDM2, MusicLDM or Stable Audio Open. Nothing is downloaded: the
pipeline is loaded with ``local_files_only=True``. The prompt is the same text the
symbolic generator resolves (``generate.controls``): key, tempo, meter, chords, instruments
and style are spelled out for the text encoder. Never required by the app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engines.core.plugin_api import (
    InputError,
    JobContext,
    NotFoundError,
    Param,
    PluginAPI,
    Result,
    atomic_path,
)

MANIFEST = {
    "name": "audio-diffusion",
    "version": "1.0",
    "api": 1,
    "description": "Text-to-audio with a local AudioLDM2 / MusicLDM / Stable Audio Open checkpoint",
}

PIPELINES = ("AudioLDM2Pipeline", "MusicLDMPipeline", "StableAudioPipeline", "AudioLDMPipeline")
_api: PluginAPI | None = None


def enable(api: PluginAPI) -> None:
    global _api
    _api = api
    api.register_command(
        id="generate.audio", title="Generate audio (diffusion checkpoint)", handler=generate_audio,
        description="Render the resolved prompt with a local text-to-audio diffusion checkpoint (GPU advised).",
        params=(
            Param("checkpoint", "path", required=True, help="folder with model_index.json (save_pretrained)"),
            Param("text", "str", default="", help="prompt; key/tempo/chords are resolved like generate.music"),
            Param("key", "str"), Param("tempo", "float"), Param("meter", "str"), Param("chords", "str"),
            Param("instruments", "str"), Param("style", "str"),
            Param("seconds", "float", default=10.0, minimum=0.5, maximum=300.0, help="length"),
            Param("steps", "int", default=50, minimum=1, maximum=1000, help="denoising steps"),
            Param("guidance", "float", default=3.5, minimum=0.0, maximum=30.0),
            Param("seed", "int", default=0),
            Param("out", "path", help="output folder (default: exports/generate)"),
        ),
    )


def describe(controls: dict[str, Any], text: str = "") -> str:
    """The resolved controls as one prompt sentence for a text encoder."""
    key = controls.get("key", "")
    mode = controls.get("mode", "")
    tonic = key[:-1] if key.endswith("m") else key
    parts = [text.strip()] if text.strip() else []
    parts.append(f"{controls.get('style', '')} music".strip())
    if controls.get("mood"):
        parts.append(controls["mood"])
    if controls.get("instruments"):
        parts.append("with " + ", ".join(controls["instruments"]))
    parts.append(f"in {tonic} {mode}, {controls.get('tempo', 0):g} bpm, {controls.get('meter', '4/4')} time")
    if controls.get("chords"):
        parts.append("chord progression " + " ".join(controls["chords"]))
    return ", ".join(p for p in parts if p)


def _pipeline_class(folder: Path) -> str:
    index = folder / "model_index.json"
    if not index.is_file():
        raise NotFoundError("not a diffusers checkpoint (model_index.json missing)", path=folder)
    try:
        name = json.loads(index.read_text("utf-8")).get("_class_name", "")
    except ValueError as exc:
        raise InputError(f"model_index.json is not valid JSON: {exc}", path=index) from None
    if name not in PIPELINES:
        raise InputError(f"{name or 'this pipeline'} is not a text-to-audio pipeline this plugin runs "
                         f"({', '.join(PIPELINES)})", path=folder)
    return name


def load_pipeline(folder: str | Path, *, device: str = "auto") -> Any:
    import diffusers
    import torch

    folder = Path(folder).expanduser()
    cls = getattr(diffusers, _pipeline_class(folder))
    try:
        pipe = cls.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise InputError(f"the checkpoint could not be loaded: {type(exc).__name__}: {exc}", path=folder) from exc
    _clap_compat(pipe)
    dev = "cuda" if (device in ("auto", "cuda") and torch.cuda.is_available()) else "cpu"
    return pipe.to(dev)


def _clap_compat(pipe: Any) -> None:
    """MusicLDM expects ``ClapModel.get_text_features`` to return a tensor; transformers 5
    returns a model output. Unwrap it on this instance (no effect on older transformers)."""
    enc = getattr(pipe, "text_encoder", None)
    if type(pipe).__name__ != "MusicLDMPipeline" or enc is None or not hasattr(enc, "get_text_features"):
        return
    original = enc.get_text_features

    def get_text_features(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if hasattr(out, "to"):
            return out
        for name in ("text_embeds", "pooler_output"):
            v = getattr(out, name, None)
            if v is not None:
                return v
        return out[0]

    enc.get_text_features = get_text_features


def sample_rate_of(pipe: Any) -> int:
    voc = getattr(pipe, "vocoder", None)
    if voc is not None and getattr(voc.config, "sampling_rate", None):
        return int(voc.config.sampling_rate)
    vae = getattr(pipe, "vae", None)
    if vae is not None and getattr(vae.config, "sampling_rate", None):
        return int(vae.config.sampling_rate)
    return 16000


def run_pipeline(pipe: Any, prompt: str, *, seconds: float, steps: int, guidance: float, seed: int,
                 ctx: JobContext | None = None) -> Any:
    import numpy as np
    import torch

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    kwargs: dict[str, Any] = {"num_inference_steps": int(steps), "guidance_scale": float(guidance),
                              "generator": gen}
    if type(pipe).__name__ == "StableAudioPipeline":
        kwargs["audio_end_in_s"] = float(seconds)
    else:
        kwargs["audio_length_in_s"] = float(seconds)
    if ctx is not None:
        import inspect

        accepted = inspect.signature(pipe.__call__).parameters

        def tick(i: int) -> None:
            ctx.check()
            ctx.progress(0.1 + 0.8 * (i + 1) / max(1, steps), f"step {i + 1}/{steps}")

        if "callback_on_step_end" in accepted:
            def cb(_pipe: Any, i: int, _t: Any, kw: dict[str, Any]) -> dict[str, Any]:
                tick(i)
                return kw
            kwargs["callback_on_step_end"] = cb
        elif "callback" in accepted:  # older pipelines (AudioLDM, MusicLDM)
            kwargs["callback"] = lambda i, _t, _latents: tick(i)
            kwargs["callback_steps"] = 1
    out = pipe(prompt, **kwargs)
    audio = np.asarray(out.audios[0], dtype=np.float32)
    return audio if audio.ndim == 1 else audio.reshape(-1, audio.shape[-1])


def generate_audio(ctx: JobContext, *, checkpoint: str, text: str, key: str | None, tempo: float | None,
                   meter: str | None, chords: str | None, instruments: str | None, style: str | None,
                   seconds: float, steps: int, guidance: float, seed: int, out: str | None) -> Result:
    assert _api is not None
    import numpy as np
    import soundfile as sf

    folder = Path(checkpoint).expanduser()
    _pipeline_class(folder)  # fail fast, before anything heavy
    controls = _api.run("generate.controls", ctx, text=text, key=key, tempo=tempo, meter=meter, chords=chords,
                        instruments=instruments, style=style).data
    prompt = describe(controls, text)
    ctx.progress(0.05, "loading the checkpoint")
    pipe = load_pipeline(folder, device=ctx.home.load_settings().compute_device)
    audio = run_pipeline(pipe, prompt, seconds=seconds, steps=steps, guidance=guidance, seed=seed, ctx=ctx)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (0.89 / peak)
    sr = sample_rate_of(pipe)
    out_dir = Path(out).expanduser() if out else ctx.home.exports / "generate"
    name = f"audio_{controls['key']}_{round(controls['tempo'])}bpm_{controls['style']}_s{seed}.wav"
    target = out_dir / name
    with atomic_path(target) as tmp:
        data = audio.T if audio.ndim == 2 else audio
        sf.write(str(tmp), data, sr, subtype="PCM_24", format="WAV")
    ctx.progress(1.0, "done")
    return Result(data={"wav": str(target.resolve()), "prompt": prompt, "controls": controls, "sample_rate": sr,
                        "pipeline": type(pipe).__name__}, files=[str(target.resolve())],
                  message=f"Wrote {target}")
