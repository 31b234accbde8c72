"""The learned reward: a Bradley-Terry model on the features of the two sides of each vote.

``r(x)`` is a linear term (plus, from :data:`MLP_MIN_VOTES` votes on, a small tanh MLP) over
the standardised features of :mod:`engines.feedback.features`; ``P(a beats b) = sigmoid(r(x_a) - r(x_b))``. A vote for A
is target 1, for B target 0, a tie 0.5; *both bad* says nothing about the order and is kept
out of the pairwise loss. Training is full-batch AdamW with weight decay, seeded.

Held-out accuracy: the decisive votes (A or B) of a seeded 20 % split of the pairs, scored by
the model fitted on the other 80 %. The saved model is then refitted on every vote with the
same settings (the card says so).

Versions live in ``<home>/feedback/reward/<version>/`` (``r001``, ``r002``, ...):
``model.safetensors`` (weights, feature mean and scale), ``config.json`` (feature names,
sizes, metrics) and ``card.md``. The newest is the one used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.atomic import atomic_write_text
from engines.core.errors import EngineError, InputError, ModelError
from engines.feedback.features import FEATURE_NAMES, FEATURES_VERSION, FeatureCache

TARGET = {"a": 1.0, "b": 0.0, "tie": 0.5}
MIN_VOTES = 6
#: with fewer votes than this the reward is linear (the MLP extrapolates badly from few votes)
MLP_MIN_VOTES = 2000
DEFAULTS: dict[str, Any] = {"hidden": None, "epochs": 400, "lr": 0.02, "weight_decay": 0.01,
                            "holdout": 0.2, "seed": 0}
_VERSION_RE = re.compile(r"^r(\d{3,})$")


def reward_dir(home: Any) -> Path:
    return Path(home.root) / "feedback" / "reward"


# --------------------------------------------------------------------------- data

@dataclass
class VoteData:
    """Feature vectors of both sides of every usable vote."""

    pair_ids: list[str]
    xa: np.ndarray  # (n, F)
    xb: np.ndarray
    y: np.ndarray  # (n,) 1 = a, 0 = b, 0.5 = tie
    kinds: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pair_ids)

    def subset(self, idx: Sequence[int] | np.ndarray) -> VoteData:
        idx = np.asarray(idx, np.int64)
        return VoteData([self.pair_ids[i] for i in idx], self.xa[idx], self.xb[idx], self.y[idx],
                        [self.kinds[i] for i in idx] if self.kinds else [])


def votes_dataset(store: Any, *, cache: FeatureCache | None = None,
                  progress: Callable[[float, str], None] | None = None) -> VoteData:
    """Features of every vote in ``store`` (a :class:`~engines.feedback.store.PreferenceStore`)."""
    cache = cache or FeatureCache(store.home)
    votes = store.votes()
    ids, xa, xb, ys, kinds = [], [], [], [], []
    skipped = {"both_bad": 0, "unreadable": 0}
    for i, (pair, vote) in enumerate(votes):
        if progress is not None and i % 10 == 0:
            progress(i / max(1, len(votes)), f"features of vote {i + 1}/{len(votes)}")
        if vote.choice not in TARGET:
            skipped["both_bad"] += 1
            continue
        try:
            fa = cache.candidate(pair.a, pair.controls)
            fb = cache.candidate(pair.b, pair.controls)
        except EngineError:
            skipped["unreadable"] += 1
            continue
        ids.append(pair.pair_id)
        xa.append(fa)
        xb.append(fb)
        ys.append(TARGET[vote.choice])
        kinds.append(pair.kind)
    F = len(FEATURE_NAMES)
    return VoteData(ids, np.array(xa, np.float32).reshape(-1, F), np.array(xb, np.float32).reshape(-1, F),
                    np.array(ys, np.float32), kinds, skipped)


def split(n: int, *, seed: int = 0, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / held-out indices (at least one held out once there are 5 items)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(n * holdout)) if n >= 5 else 0
    k = max(k, 1) if n >= 5 else 0
    return np.sort(perm[k:]), np.sort(perm[:k])


# --------------------------------------------------------------------------- model

class RewardModel:
    """A fitted reward; :meth:`score` maps feature rows to rewards (higher = preferred)."""

    def __init__(self, state: dict[str, Any], config: dict[str, Any], *, version: str = "", folder: Path | None = None
                 ) -> None:
        self.state = {k: np.asarray(v, np.float32) for k, v in state.items()}
        self.config = config
        self.version = version
        self.folder = folder

    @property
    def feature_names(self) -> list[str]:
        return list(self.config["features"])

    def score(self, x: np.ndarray) -> np.ndarray:
        """Rewards of feature rows ``(n, F)`` (numpy only, no torch)."""
        s = self.state
        x = np.atleast_2d(np.asarray(x, np.float32))
        z = (x - s["mean"]) / s["scale"]
        r = z @ s["lin.w"] + s["lin.b"]
        if "mlp.w1" in s:
            h = np.tanh(z @ s["mlp.w1"] + s["mlp.b1"])
            r = r + h @ s["mlp.w2"] + s["mlp.b2"]
        return r.reshape(-1).astype(np.float64)

    def prob_a(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        d = self.score(xa) - self.score(xb)
        return 1.0 / (1.0 + np.exp(-d))

    def accuracy(self, data: VoteData) -> tuple[float | None, int]:
        """Share of decisive votes (A/B) whose winner gets the higher reward; ``(None, 0)`` if none."""
        dec = data.y != 0.5
        n = int(dec.sum())
        if n == 0:
            return None, 0
        d = self.score(data.xa[dec]) - self.score(data.xb[dec])
        return float(np.mean((d > 0) == (data.y[dec] > 0.5))), n

    # persistence -------------------------------------------------------------------
    def save(self, folder: Path, card: str) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.state.items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config, indent=2) + "\n", "utf-8")
        (folder / "card.md").write_text(card, "utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> RewardModel:
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text("utf-8"))
            state = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the reward model cannot be read: {exc}", path=folder) from None
        if list(config.get("features", [])) != list(FEATURE_NAMES):
            raise ModelError("the reward model was trained on other features; train it again with "
                             "`studio prefs train-reward`", path=folder)
        return cls(state, config, version=folder.name, folder=folder)


def fit(data: VoteData, *, hidden: int | None = DEFAULTS["hidden"], epochs: int = DEFAULTS["epochs"],
        lr: float = DEFAULTS["lr"], weight_decay: float = DEFAULTS["weight_decay"], seed: int = DEFAULTS["seed"],
        threads: int = 2) -> RewardModel:
    """Fit the Bradley-Terry reward on ``data`` (full batch, seeded)."""
    import torch

    if len(data) == 0:
        raise InputError("no votes to learn from")
    if hidden is None:
        hidden = 16 if len(data) >= MLP_MIN_VOTES else 0
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        both = np.concatenate([data.xa, data.xb], 0).astype(np.float64)
        mean = both.mean(0)
        scale = both.std(0)
        scale = np.where(scale > 1e-6, scale, 1.0)
        za = torch.from_numpy(((data.xa - mean) / scale).astype(np.float32))
        zb = torch.from_numpy(((data.xb - mean) / scale).astype(np.float32))
        y = torch.from_numpy(data.y.astype(np.float32))
        F = za.shape[1]
        lin = torch.nn.Linear(F, 1)
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
        params = list(lin.parameters())
        mlp = None
        if hidden > 0:
            l1, l2 = torch.nn.Linear(F, hidden), torch.nn.Linear(hidden, 1)
            torch.nn.init.normal_(l1.weight, std=0.1)
            torch.nn.init.zeros_(l2.weight)
            mlp = torch.nn.Sequential(l1, torch.nn.Tanh(), l2)
            params += list(mlp.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

        def r(z: torch.Tensor) -> torch.Tensor:
            out = lin(z)
            if mlp is not None:
                out = out + mlp(z)
            return out.squeeze(-1)

        for _ in range(int(epochs)):
            d = r(za) - r(zb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(d, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        state: dict[str, Any] = {
            "mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
            "lin.w": lin.weight.detach().numpy().T.copy(), "lin.b": lin.bias.detach().numpy().copy(),
        }
        if mlp is not None:
            state.update({"mlp.w1": l1.weight.detach().numpy().T.copy(), "mlp.b1": l1.bias.detach().numpy().copy(),
                          "mlp.w2": l2.weight.detach().numpy().T.copy(), "mlp.b2": l2.bias.detach().numpy().copy()})
        config = {"features": list(FEATURE_NAMES), "features_version": FEATURES_VERSION, "hidden": int(hidden),
                  "epochs": int(epochs), "lr": lr, "weight_decay": weight_decay, "seed": int(seed),
                  "final_loss": round(float(loss.detach()), 5), "n_votes": len(data)}
        return RewardModel(state, config)
    finally:
        torch.set_num_threads(old_threads)


def evaluate_split(data: VoteData, *, seed: int = 0, holdout: float = 0.2, **fit_kw: Any
                   ) -> tuple[float | None, int, int]:
    """Held-out accuracy of a model fitted on a seeded split: ``(accuracy, n_train, n_held_out)``."""
    tr, ho = split(len(data), seed=seed, holdout=holdout)
    if len(tr) == 0 or len(ho) == 0:
        return None, len(tr), len(ho)
    model = fit(data.subset(tr), seed=seed, **fit_kw)
    acc, _ = model.accuracy(data.subset(ho))
    return acc, len(tr), len(ho)


# --------------------------------------------------------------------------- versions

def versions(home: Any) -> list[str]:
    root = reward_dir(home)
    if not root.is_dir():
        return []
    out = [p.name for p in root.iterdir() if _VERSION_RE.match(p.name) and (p / "config.json").is_file()
           and (p / "model.safetensors").is_file()]
    return sorted(out, key=lambda v: int(v[1:]))


def latest(home: Any) -> RewardModel | None:
    """The newest reward model of ``home`` (``None`` when there is none)."""
    vs = versions(home)
    return RewardModel.load(reward_dir(home) / vs[-1]) if vs else None


def _publish(home: Any, model: RewardModel, card: Callable[[str], str]) -> Path:
    """Write a new version folder atomically (temp folder, then rename)."""
    root = reward_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        existing = [int(p.name[1:]) for p in root.iterdir() if _VERSION_RE.match(p.name)]
        version = f"r{(max(existing) + 1) if existing else 1:03d}"
        tmp = root / f".{version}.{uuid.uuid4().hex[:8]}.part"
        model.version = version
        model.config["version"] = version
        model.save(tmp, card(version))
        try:
            os.rename(tmp, root / version)  # fails if another process took the number
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            continue
        model.folder = root / version
        return root / version
    raise EngineError("could not create a new reward model version", path=root)


def train_reward(home: Any, *, store: Any = None, seed: int = DEFAULTS["seed"], holdout: float = DEFAULTS["holdout"],
                 hidden: int | None = DEFAULTS["hidden"], epochs: int = DEFAULTS["epochs"],
                 progress: Callable[[float, str], None] | None = None, command: str = "studio prefs train-reward"
                 ) -> dict[str, Any]:
    """Fit the reward on every vote in ``home``'s preference store and save a new version.

    Returns a report: ``version``, ``held_out_accuracy``, ``n_train``, ``n_held_out``, ``votes``
    (usable), ``skipped``, ``agreement`` (all decisive votes, in-sample), ``path``.
    """
    from engines.feedback.store import PreferenceStore

    prog = progress or _no_progress
    store = store or PreferenceStore(home)
    data = votes_dataset(store, progress=lambda f, m: prog(0.7 * f, m))
    n_dec = int((data.y != 0.5).sum())
    if len(data) < MIN_VOTES or n_dec < 2:
        raise InputError(f"the reward model needs at least {MIN_VOTES} votes for A, B or tie (with at least "
                         f"two for A or B); there are {len(data)} ({n_dec} decisive, "
                         f"{data.skipped.get('both_bad', 0)} 'both bad' not used). Rate more pairs with "
                         "`studio prefs queue` / `studio prefs vote`", path=store.db_path)
    prog(0.75, "fitting")
    fit_kw: dict[str, Any] = {"hidden": hidden, "epochs": epochs}
    acc, n_tr, n_ho = evaluate_split(data, seed=seed, holdout=holdout, **fit_kw)
    _, ho = split(len(data), seed=seed, holdout=holdout)
    n_ho_dec = int((data.subset(ho).y != 0.5).sum()) if len(ho) else 0
    prog(0.9, "refitting on every vote")
    model = fit(data, seed=seed, **fit_kw)
    hidden = model.config["hidden"]
    agree, n_agree = model.accuracy(data)
    by_choice: dict[str, int] = {}
    for _, v in store.votes():
        by_choice[v.choice] = by_choice.get(v.choice, 0) + 1
    model.config.update({
        "held_out_accuracy": None if acc is None else round(acc, 4), "n_train": n_tr, "n_held_out": n_ho,
        "n_held_out_decisive": n_ho_dec, "holdout": holdout, "split_seed": seed,
        "agreement": None if agree is None else round(agree, 4), "votes_by_choice": by_choice,
        "created": time.time(), "command": command,
    })

    def card(version: str) -> str:
        acc_txt = "n/a" if acc is None else f"{acc:.3f}"
        return "\n".join([
            f"# Reward model {version}", "",
            "Bradley-Terry reward over the features of `engines/feedback/features.py` (linear term"
            + (f" plus a {hidden}-unit tanh MLP" if hidden else "") + ", standardised inputs, AdamW, {epochs} full-batch epochs, seed {seed}).",
            "",
            f"- votes used: {len(data)} (A/B/tie; ties count as half), by choice: {json.dumps(by_choice)}",
            f"- not used: {data.skipped.get('both_bad', 0)} 'both bad', {data.skipped.get('unreadable', 0)} "
            "with unreadable files",
            f"- held-out accuracy: {acc_txt} on {n_ho_dec} decisive votes of a {holdout:.0%} split "
            f"(seed {seed}), model fitted on the other {n_tr}",
            f"- the saved model is refitted on all {len(data)} votes; its in-sample agreement is "
            f"{'n/a' if agree is None else f'{agree:.3f}'} on {n_agree} decisive votes",
            f"- command: `{command}`", "",
        ])

    folder = _publish(home, model, card)
    prog(1.0, f"saved {model.version}")
    return {"version": model.version, "held_out_accuracy": model.config["held_out_accuracy"], "n_train": n_tr,
            "n_held_out": n_ho, "n_held_out_decisive": n_ho_dec, "votes": len(data), "skipped": data.skipped,
            "agreement": model.config["agreement"], "path": str(folder), "by_choice": by_choice}


def agreement(home: Any, store: Any = None) -> dict[str, Any] | None:
    """``{"model_version", "agreement", "n"}`` of the newest reward model on every decisive vote
    (``None`` without a model). For ``prefs.stats``."""
    from engines.feedback.store import PreferenceStore

    model = latest(home)
    if model is None:
        return None
    store = store or PreferenceStore(home)
    data = votes_dataset(store)
    acc, n = model.accuracy(data)
    return {"model_version": model.version, "agreement": None if acc is None else round(acc, 4), "n": n,
            "held_out_accuracy": model.config.get("held_out_accuracy")}


def score_files(model: RewardModel, home: Any, *, audio: str | os.PathLike[str] | None = None,
                midi: str | os.PathLike[str] | None = None, controls: dict[str, Any] | None = None) -> float:
    return float(model.score(FeatureCache(home).files(audio=audio, midi=midi, controls=controls))[0])


def _no_progress(fraction: float, message: str) -> None:  # noqa: ARG001
    return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
