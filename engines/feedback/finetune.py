"""Fine-tune the generator on the votes: Diffusion-DPO on reward-ranked samples of the model.

Method (what ``studio prefs finetune`` runs)
-------------------------------------------
1. The *prompts* are the controls of the voted ``generate`` pairs (key, tempo, meter, chords,
   bars, instruments, style...).
2. For each prompt the current generator (the selected version, or ``--base``) samples
   ``samples_per_prompt`` pieces with new seeds. What the model contributed is kept as its
   training target (its notes as picked from the sampler's output and placed by the constraint
   layer, :meth:`~engines.generate.engine.Engine._on_model_notes`), and each piece is rendered
   in memory and scored by the learned reward (:mod:`engines.feedback.reward`, trained on the
   votes; trained first if there is none).
3. Within a prompt, samples are paired best-with-worst by reward, and the Diffusion-DPO loss
   (Wallace et al., 2023; :func:`train_dpo`) is applied with the frozen parent as reference,
   only on the roles the model writes for that style (the style layer's comping / bass are
   rules and are not trained).
4. A short check compares parent and new version on the same prompts with fresh seeds: mean
   reward and the MIDI-side control adherence of ``engines/generate/eval.py`` (key CK/CKD,
   chords ECM/CMAO). The new version is selected only if adherence did not drop by more than
   ``ADHERENCE_TOLERANCE``.

Why the model's own samples and not the voted files: the stored MIDI of a vote is the *mixed*
result (the melody can share one track with style-layer comping and bass; the constraint layer
has moved notes), so the model's part cannot be separated from it reliably; the reward model
carries the votes' taste to samples whose model part is known exactly. Why DPO and not
reward-weighted regression on the same samples: regressing on picked notes also pulls the
network's graded output towards the picked sparsity, which thinned the notes (the first two
evaluation runs, BENCHMARKS.md); DPO moves the model only by the winner/loser difference, which
cancels what both share. Minutes on two CPU threads for a few hundred votes.

Nothing here writes the shipped weights: a version is a new folder under
``<home>/models/generate`` (:mod:`engines.feedback.versions`).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import CancelledError, InputError
from engines.feedback import versions as V

ADHERENCE_TOLERANCE = 0.05
ADHERENCE_KEYS = ("CK", "CKD", "ECM", "CMAO")
DEFAULTS: dict[str, Any] = {"steps": 120, "seed": 0, "samples_per_prompt": 4, "max_prompts": 16, "batch": 8,
                            "lr": 5e-5, "beta": 500.0, "p_drop": 0.15, "check_prompts": 6, "threads": 2}

ProgressFn = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:  # noqa: ARG001
    return None


@dataclass
class Sample:
    """One generated piece: the model's planes (6, P, T), what conditions them, its reward."""

    planes: np.ndarray
    chroma: np.ndarray
    bass: np.ndarray
    key: Any
    meter: Any
    T: int
    texture: int
    roles: tuple[int, ...]  # role indices the model wrote (kept in the result)
    prompt: int
    midi: str
    reward: float = 0.0


# --------------------------------------------------------------------------- prompts

def request_from_controls(controls: dict[str, Any], *, seed: int, out_dir: str, text: str = "") -> Any:
    """A :class:`~engines.generate.engine.GenerateRequest` that reproduces ``controls``."""
    from engines.generate.engine import GenerateRequest

    c = controls or {}
    chords = c.get("chords")
    inst = c.get("instruments")
    if c.get("key") is None and not text:
        raise InputError("a voted generate pair has neither controls nor a prompt to learn from")
    return GenerateRequest(
        text="" if c.get("key") else text, key=c.get("key"), mode=c.get("mode"), tempo=c.get("tempo"),
        meter=c.get("meter"), chords=" ".join(chords) if isinstance(chords, (list, tuple)) else chords,
        bars=c.get("bars"), instruments=tuple(inst) if isinstance(inst, (list, tuple)) else inst,
        style=c.get("style"), density=c.get("density"), drums=c.get("drums"), seed=int(seed), out_dir=out_dir,
        render=False)


def vote_prompts(store: Any) -> tuple[list[dict[str, Any]], int]:
    """Distinct controls of the voted generate pairs (oldest first) and the number of votes."""
    seen: dict[str, dict[str, Any]] = {}
    n = 0
    for pair, vote in store.votes():
        if pair.kind != "generate" or vote.choice == "both_bad":
            continue
        c = {k: v for k, v in (pair.controls or {}).items() if k != "sources"}
        if not c.get("key") and not pair.prompt:
            continue
        n += 1
        key = json.dumps(c, sort_keys=True, default=str) + "|" + (pair.prompt if not c.get("key") else "")
        seen.setdefault(key, {"controls": c, "prompt": pair.prompt})
    return list(seen.values()), n


# --------------------------------------------------------------------------- sampling

def _capture_engine(engine: Any) -> Any:
    """The same model, in an Engine that keeps the planes the sampler produced."""
    from engines.generate.engine import Engine

    class _Capture(Engine):
        last: dict[str, Any] = {}

        def _sample(self, ctl: Any, chords: Any, T: int, **kw: Any) -> np.ndarray:  # type: ignore[override]
            planes = super()._sample(ctl, chords, T, **kw)
            self.last = {"chords": chords, "T": T, "ctl": ctl, "texture": kw.get("texture", 0), "notes": {}}
            return planes

        def _on_model_notes(self, notes: dict[str, list[list[int]]], T: int) -> None:  # noqa: ARG002
            self.last["notes"] = notes

    return _Capture(engine.model, name=engine.name)


def generate_samples(engine: Any, prompts: Sequence[dict[str, Any]], *, seeds: Sequence[Sequence[int]],
                     reward: Any, out_dir: str, check: Callable[[], None] = lambda: None,
                     progress: ProgressFn = _no_progress) -> list[Sample]:
    """Generate, capture planes, render in memory and score with ``reward`` (a RewardModel or None)."""
    from engines.feedback.features import audio_signal_features, midi_features, vector
    from engines.generate import data as D
    from engines.generate import style as S
    from engines.generate.engine import Engine
    from engines.media.midi import read_midi
    from engines.media.synth import render_song

    cap = _capture_engine(engine)
    out: list[Sample] = []
    total = sum(len(s) for s in seeds)
    k = 0
    for pi, (pr, ss) in enumerate(zip(prompts, seeds, strict=True)):
        for sd in ss:
            check()
            req = request_from_controls(pr["controls"], seed=int(sd), out_dir=out_dir, text=pr.get("prompt", ""))
            res = cap.generate(req)
            info = cap.last
            ctl = info["ctl"]
            st = S.STYLES[ctl.style]
            kept = [D.ROLES.index(r) for r in info["notes"]]
            chords = info["chords"]
            r_val = 0.0
            if reward is not None:
                song = read_midi(res.midi)
                y = render_song(song, sr=22050, stereo=False)
                x = vector(midi_features(song, key=res.controls.get("key")), audio_signal_features(y, 22050),
                           res.controls)
                r_val = float(reward.score(x)[0])
            # the training target is what the model contributed to the piece the reward scored:
            # its notes as picked from the sampler's graded output and placed by the constraint
            # layer (not the graded output itself: regressing on it shrinks the outputs and
            # thins out the notes)
            planes = Engine.model_planes(info["notes"], int(info["T"])).astype(np.float32)
            out.append(Sample(planes=planes, chroma=np.stack([c.chroma() for c in chords]).astype(np.float32),
                              bass=np.array([c.bass for c in chords], np.int32), key=ctl.key, meter=ctl.meter,
                              T=int(info["T"]), texture=int(st.texture), roles=tuple(sorted(set(kept))), prompt=pi,
                              midi=res.midi, reward=r_val))
            k += 1
            progress(k / max(1, total), f"sampled {k}/{total}")
    return out


# --------------------------------------------------------------------------- training

def reward_pairs(samples: Sequence[Sample], *, min_gap: float = 0.0) -> list[tuple[Sample, Sample]]:
    """Per prompt, (winner, loser) pairs by reward: best with worst, second best with second
    worst, ... (pairs closer than ``min_gap`` in reward are left out)."""
    by: dict[int, list[Sample]] = {}
    for s in samples:
        if s.roles:
            by.setdefault(s.prompt, []).append(s)
    out = []
    for group in by.values():
        g = sorted(group, key=lambda s: -s.reward)
        for i in range(len(g) // 2):
            w, lo = g[i], g[-1 - i]
            if w.reward - lo.reward > min_gap:
                out.append((w, lo))
    return out


def _window(s: Sample, start: int, window: int, p_drop_harmony: bool, cls_drop: bool
            ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    from engines.generate import data as D

    L = min(window, s.T - start)
    x0 = np.full((D.N_TRACK_CH, D.N_PITCH, window), -1.0, np.float32)
    x0[:, :, :L] = s.planes[:, :, start:start + L]
    c = D.cond_planes(s.chroma, s.bass, s.key, s.meter, start, window, s.T)
    if p_drop_harmony:
        c[list(D.HARMONY_CH)] = 0.0
    kn = D.known_planes(np.zeros((D.N_TRACK_CH, D.N_PITCH, window), np.float32),
                        np.zeros((D.N_TRACKS, window), np.float32))
    mask = np.zeros((D.N_TRACK_CH, 1, window), np.float32)
    for r in s.roles:
        mask[2 * r:2 * r + 2, 0, :L] = 1.0
    return x0, np.concatenate([c, kn], 0), 0 if cls_drop else s.texture, mask


def train_dpo(model: Any, pairs: Sequence[tuple[Sample, Sample]], *, steps: int, batch: int, lr: float, seed: int,
              beta: float, p_drop: float, check: Callable[[], None] = lambda: None,
              progress: ProgressFn = _no_progress) -> tuple[Any, list[float]]:
    """A copy of ``model`` fine-tuned with the Diffusion-DPO loss (Wallace et al., 2023).

    For a (winner, loser) pair, with the same noise and timestep, the loss is
    ``-log sigmoid(-beta * ((e_w - e_w_ref) - (e_l - e_l_ref)))``, where ``e`` is the denoising
    error (v-prediction, mean over the cells of the roles the model wrote) of the model being
    trained and ``e_ref`` that of the frozen parent. Only the *difference* between winner and
    loser moves the model, so whatever both share (how sparse a picked target is compared with
    the network's graded output, say) cancels out, and the parent anchors it.
    """
    import torch
    import torch.nn.functional as F

    from engines.generate.model import RollDiffusion, make_train_scheduler

    if not pairs:
        raise InputError("no pair of samples differed in reward, so there is nothing to prefer")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = model.cfg
    ref = copy.deepcopy(model.unet).to("cpu").eval()
    for prm in ref.parameters():
        prm.requires_grad_(False)
    unet = copy.deepcopy(model.unet).to("cpu").train()
    sched = make_train_scheduler(cfg)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    window = int(cfg.window)
    losses: list[float] = []
    for i in range(int(steps)):
        check()
        xs, cs, cls, ms = [], [], [], []
        for _ in range(batch):
            w, lo = pairs[int(rng.integers(len(pairs)))]
            spb = w.meter.steps_per_bar
            n_bars = max(1, min(w.T, lo.T) // spb)
            start = int(rng.integers(0, n_bars)) * spb
            start = min(start, max(0, min(w.T, lo.T) - min(window, min(w.T, lo.T))))
            drop_h, drop_c = bool(rng.random() < p_drop), bool(rng.random() < p_drop)
            for smp in (w, lo):
                x0, c, k, m = _window(smp, start, window, drop_h, drop_c)
                xs.append(x0)
                cs.append(c)
                cls.append(k)
                ms.append(m)
        x0 = torch.from_numpy(np.stack(xs))  # (2B, ...): winner, loser, winner, loser, ...
        cond = torch.from_numpy(np.stack(cs))
        klass = torch.from_numpy(np.array(cls, np.int64))
        m = torch.from_numpy(np.stack(ms))
        noise = torch.randn_like(x0[0::2]).repeat_interleave(2, dim=0)
        t = torch.randint(0, cfg.num_train_timesteps, (batch,)).repeat_interleave(2)
        xt = sched.add_noise(x0, noise, t)
        target = sched.get_velocity(x0, noise, t) if cfg.prediction_type == "v_prediction" else noise
        inp = torch.cat([xt, cond], 1)

        def err(net: Any, inp: Any = inp, target: Any = target, m: Any = m, klass: Any = klass,
                t: Any = t) -> Any:
            pred = net(inp, t, class_labels=klass)
            mm = m.expand_as(pred)
            return ((pred - target) ** 2 * mm).sum(dim=(1, 2, 3)) / mm.sum(dim=(1, 2, 3)).clamp_min(1.0)

        e = err(unet)
        with torch.no_grad():
            e_ref = err(ref)
        d = (e - e_ref)
        diff = d[0::2] - d[1::2]
        loss = -F.logsigmoid(-beta * diff).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        progress((i + 1) / steps, f"fine-tuning step {i + 1}/{steps}")
    unet.eval()
    return RollDiffusion(unet, cfg, name="finetuned"), losses


# --------------------------------------------------------------------------- checks

def adherence(midi: str, controls: dict[str, Any]) -> dict[str, float]:
    """MIDI-side control scores (``engines.generate.eval``) of one generated file."""
    from engines.generate import eval as E
    from engines.generate import theory
    from engines.generate.controls import Controls
    from engines.media.midi import read_midi

    ctl = Controls.from_dict(controls)
    est = E.estimate_from_song(read_midi(midi))
    return E.control_scores(est, tempo=ctl.tempo, key=ctl.key, chords=list(ctl.chords),
                            meter=theory.parse_meter(str(ctl.meter)))


def summarize(samples: Sequence[Sample], controls: Sequence[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {"reward": float(np.mean([s.reward for s in samples])) if samples else float("nan")}
    scores = [adherence(s.midi, controls[s.prompt]) for s in samples]
    for k in ADHERENCE_KEYS + ("TB",):
        vals = [sc[k] for sc in scores if k in sc and not math.isnan(sc[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return {k: round(v, 4) for k, v in out.items()}


def adherence_drop(before: dict[str, float], after: dict[str, float]) -> float:
    """Largest drop over :data:`ADHERENCE_KEYS` (positive = worse)."""
    drops = [before[k] - after[k] for k in ADHERENCE_KEYS
             if k in before and k in after and not (math.isnan(before[k]) or math.isnan(after[k]))]
    return max(drops) if drops else 0.0


# --------------------------------------------------------------------------- the command

def finetune(home: Any, *, store: Any = None, base: str | None = None, steps: int = DEFAULTS["steps"],
             seed: int = DEFAULTS["seed"], samples_per_prompt: int = DEFAULTS["samples_per_prompt"],
             max_prompts: int = DEFAULTS["max_prompts"], batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"],
             beta: float = DEFAULTS["beta"], check_prompts: int = DEFAULTS["check_prompts"],
             threads: int = DEFAULTS["threads"], select: bool = True, progress: ProgressFn | None = None,
             cancel: Any = None, command: str = "studio prefs finetune") -> dict[str, Any]:
    """Create a new generator version from the votes (and select it unless adherence dropped).

    ``base``: the version to start from (``"base"``, ``"gNNN"``, ``"debug"``); default: the
    selected one. Returns a report (``version``, ``parent``, ``selected``, ``metrics``...).
    """
    from engines.feedback import reward as R
    from engines.feedback.store import PreferenceStore

    prog = progress or _no_progress

    def check() -> None:
        if cancel is not None and getattr(cancel, "cancelled", False):
            raise CancelledError()

    store = store or PreferenceStore(home)
    prompts, n_votes = vote_prompts(store)
    if not prompts:
        raise InputError("fine-tuning needs votes on generated pieces (pairs of kind 'generate' with their "
                         "controls); rate some with `studio prefs queue` and `studio prefs vote`",
                         path=store.db_path)
    rm = R.latest(home)
    trained_reward = None
    if rm is None or rm.config.get("n_votes", 0) < len(store.votes()) - store.stats()["by_choice"].get("both_bad", 0):
        prog(0.01, "training the reward model on the votes")
        trained_reward = R.train_reward(home, store=store, command=command + " (reward)")
        rm = R.latest(home)
    return run_finetune(home, prompts=prompts, reward_model=rm, n_votes=n_votes, base=base, steps=steps, seed=seed,
                        samples_per_prompt=samples_per_prompt, max_prompts=max_prompts, batch=batch, lr=lr, beta=beta,
                        check_prompts=check_prompts, threads=threads, select=select, progress=prog, check=check,
                        command=command, extra={"reward_trained": trained_reward})


def run_finetune(home: Any, *, prompts: list[dict[str, Any]], reward_model: Any, n_votes: int, base: str | None = None,
                 steps: int = DEFAULTS["steps"], seed: int = DEFAULTS["seed"],
                 samples_per_prompt: int = DEFAULTS["samples_per_prompt"], max_prompts: int = DEFAULTS["max_prompts"],
                 batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"], beta: float = DEFAULTS["beta"],
                 check_prompts: int = DEFAULTS["check_prompts"], threads: int = DEFAULTS["threads"], select: bool = True,
                 progress: ProgressFn | None = None, check: Callable[[], None] = lambda: None,
                 command: str = "studio prefs finetune", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fine-tuning itself, given the prompts and a reward model (see :func:`finetune`)."""
    import torch

    prog = progress or _no_progress
    rm = reward_model
    t0 = time.monotonic()
    parent = base or V.selected(home)
    source, parent_label = V.model_source(home, parent)
    from engines.generate.engine import Engine

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    tmp_out = Path(tempfile.mkdtemp(prefix="cue-finetune-"))
    try:
        eng = Engine.from_pretrained(source, device="cpu")
        rng = np.random.default_rng(seed)
        if len(prompts) > max_prompts:
            idx = np.sort(rng.choice(len(prompts), size=max_prompts, replace=False))
            prompts = [prompts[i] for i in idx]
        seeds = [[int(rng.integers(1, 2**31 - 1)) for _ in range(samples_per_prompt)] for _ in prompts]
        samples = generate_samples(eng, prompts, seeds=seeds, reward=rm, out_dir=str(tmp_out / "train"),
                                   check=check, progress=lambda f, m: prog(0.05 + 0.35 * f, m))
        pairs = reward_pairs(samples)
        new_model, losses = train_dpo(eng.model, pairs, steps=steps, batch=batch, lr=lr, seed=seed,
                                      beta=beta, p_drop=DEFAULTS["p_drop"], check=check,
                                      progress=lambda f, m: prog(0.4 + 0.4 * f, m))
        # check on fresh seeds: parent vs new, the same prompts and seeds
        cp = prompts[:max(1, min(check_prompts, len(prompts)))]
        cseeds = [[int(rng.integers(1, 2**31 - 1)) for _ in range(2)] for _ in cp]
        controls = [p["controls"] for p in cp]
        before = summarize(generate_samples(eng, cp, seeds=cseeds, reward=rm, out_dir=str(tmp_out / "before"),
                                            check=check, progress=lambda f, m: prog(0.8 + 0.08 * f, "check: " + m)),
                           [_full_controls(c) for c in controls])
        new_eng = Engine(new_model, name="finetuned")
        after = summarize(generate_samples(new_eng, cp, seeds=cseeds, reward=rm, out_dir=str(tmp_out / "after"),
                                           check=check, progress=lambda f, m: prog(0.88 + 0.08 * f, "check: " + m)),
                          [_full_controls(c) for c in controls])
    finally:
        torch.set_num_threads(old_threads)
        shutil.rmtree(tmp_out, ignore_errors=True)
    drop = adherence_drop(before, after)
    ok = drop <= ADHERENCE_TOLERANCE
    minutes = (time.monotonic() - t0) / 60
    metrics = {"check_before": before, "check_after": after, "adherence_drop": round(drop, 4),
               "final_loss": round(float(np.mean(losses[-20:])), 4), "minutes": round(minutes, 2)}
    meta = {"parent": parent_label, "base_model": source if not Path(source).is_dir() else parent_label,
            "method": "Diffusion-DPO on reward-ranked pairs of the model's own samples",
            "reward_version": rm.version if rm else None, "votes_used": n_votes, "prompts": len(prompts),
            "samples": len(samples), "steps": int(steps), "batch": int(batch), "lr": lr, "beta": beta, "seed": int(seed),
            "created": time.time(), "command": command, "metrics": metrics}
    _, tmp = V.new_version_folder(home)
    new_model.save(tmp)

    def on_name(version: str, folder: Path) -> None:
        cfg = json.loads((folder / "config.json").read_text("utf-8"))
        cfg.setdefault("extra", {})["feedback"] = {**meta, "version": version}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", "utf-8")
        (folder / "MODEL_CARD.md").write_text(_card(version, meta, ok), "utf-8")

    version = V.publish(home, tmp, on_name)
    if select and ok:
        V.select(home, version)
    prog(1.0, f"created {version}")
    return {"version": version, "parent": parent_label, "selected": bool(select and ok),
            "selected_now": V.selected(home), "adherence_ok": ok, "votes_used": n_votes, "prompts": len(prompts),
            "samples": len(samples), "steps": int(steps), "reward_version": rm.version if rm else None,
            **(extra or {}), "metrics": metrics, "path": str(V.versions_dir(home) / version)}


def _full_controls(c: dict[str, Any]) -> dict[str, Any]:
    """Controls with the chords resolved (a prompt without chords uses the style's progression)."""
    from engines.generate.controls import Controls

    return Controls.from_dict(c).to_dict() if c.get("key") else c


def _card(version: str, meta: dict[str, Any], selected_ok: bool) -> str:
    m = meta["metrics"]
    b, a = m["check_before"], m["check_after"]
    rows = "\n".join(f"| {k} | {b.get(k)} | {a.get(k)} |" for k in ("reward", *ADHERENCE_KEYS, "TB"))
    return "\n".join([
        f"# Cue Studio generate model {version} (fine-tuned on your votes)", "",
        f"- parent: `{meta['parent']}`",
        f"- method: {meta['method']}; reward model `{meta['reward_version']}`",
        f"- votes used: {meta['votes_used']} (their {meta['prompts']} distinct prompts; {meta['samples']} samples)",
        f"- training: {meta['steps']} steps, batch {meta['batch']}, lr {meta['lr']}, beta {meta['beta']}, "
        f"seed {meta['seed']}, {m['minutes']} min",
        f"- command: `{meta['command']}`", "",
        "## Check (parent vs this version, same prompts and seeds; MIDI-side control adherence)", "",
        "| metric | parent | this version |", "| --- | --- | --- |", rows, "",
        f"Largest adherence drop: {m['adherence_drop']} (tolerance {ADHERENCE_TOLERANCE}): "
        + ("selected." if selected_ok else "NOT selected automatically; select it with `studio prefs models "
                                           f"--select {version}` if you want it anyway."),
        "",
        "The architecture and the rest of the recipe are the shipped model's (see its MODEL_CARD.md).", "",
    ])
