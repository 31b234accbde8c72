"""Commands that learn from the votes: ``prefs.train-reward``, ``prefs.finetune``, ``prefs.models``.

Registered through the ``cue_studio.plugins`` entry point ``prefs_learn``. Importing this module
is cheap: handlers are named as strings and import torch only when they run.
"""

from __future__ import annotations

from typing import Any

from engines.core.jobs import JobContext
from engines.core.plugin_api import Param, PluginAPI, Result

MANIFEST = {
    "name": "prefs_learn",
    "version": "1.0",
    "api": 1,
    "description": "Learn from your A/B votes: a reward model, a fine-tuned generator, versions to select or revert",
}

_H = "engines.feedback.learn_commands"


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="prefs.train-reward", title="Train the reward model on my votes", handler=f"{_H}:train_reward",
        description="Fit a Bradley-Terry reward model on the votes (ties count half, 'both bad' is left out) "
                    "and report its accuracy on a held-out 20 % of them.",
        params=(Param("seed", "int", default=0, help="seed of the held-out split and the fit"),
                Param("hidden", "int", minimum=0, maximum=256,
                      help="hidden units of the MLP (0 = linear; default: linear under 2000 votes, else 16)"),
                Param("epochs", "int", default=400, minimum=1, maximum=20000)),
    )
    api.register_command(
        id="prefs.finetune", title="Fine-tune the generator on my votes", handler=f"{_H}:finetune",
        description="Diffusion-DPO fine-tuning of the generator: its own samples for your voted prompts, "
                    "ranked by the reward model trained on your votes; creates a new model version and "
                    "selects it (unless control adherence dropped).",
        params=(Param("steps", "int", default=120, minimum=1, maximum=20000, help="training steps"),
                Param("seed", "int", default=0),
                Param("base", "str", help="version to start from: base, gNNN or debug (default: the selected one)"),
                Param("samples", "int", default=4, minimum=2, maximum=64, help="samples per voted prompt"),
                Param("prompts", "int", default=16, minimum=1, maximum=1000, help="at most this many prompts"),
                Param("check", "int", default=6, minimum=1, maximum=100, help="prompts in the before/after check"),
                Param("select", "bool", default=True, help="select the new version when it passes the check")),
    )
    api.register_command(
        id="prefs.models", title="Generator versions", handler=f"{_H}:models",
        description="List the generator versions made from your votes with their metrics; --select VERSION "
                    "makes one the default for generation, --revert goes back to the previous one (then base).",
        params=(Param("select", "str", help="version to use: base or gNNN"),
                Param("revert", "bool", default=False, help="go back to the previously selected version")),
    )


def train_reward(ctx: JobContext, *, seed: int = 0, hidden: int | None = None, epochs: int = 400) -> Result:
    from engines.feedback.reward import train_reward as train

    rep = train(ctx.home, seed=seed, hidden=hidden, epochs=epochs, progress=ctx.progress,
                command=f"studio prefs train-reward --seed {seed} --epochs {epochs}"
                + ("" if hidden is None else f" --hidden {hidden}"))
    acc = rep["held_out_accuracy"]
    msg = (f"reward model {rep['version']}: held-out accuracy "
           f"{'n/a' if acc is None else f'{acc:.1%}'} on {rep['n_held_out_decisive']} held-out votes "
           f"(trained on {rep['n_train']}, {rep['n_held_out']} held out; saved refitted on all {rep['votes']}) "
           f"-> {rep['path']}")
    return Result(data=rep, files=[rep["path"]], message=msg)


def finetune(ctx: JobContext, *, steps: int = 120, seed: int = 0, base: str | None = None, samples: int = 4,
             prompts: int = 16, check: int = 6, select: bool = True) -> Result:
    from engines.feedback.finetune import finetune as ft

    cmd = f"studio prefs finetune --steps {steps} --seed {seed} --samples {samples} --prompts {prompts}"
    if base:
        cmd += f" --base {base}"
    rep = ft(ctx.home, base=base or None, steps=steps, seed=seed, samples_per_prompt=samples, max_prompts=prompts,
             check_prompts=check, select=select, progress=ctx.progress, cancel=ctx.cancel, command=cmd)
    m = rep["metrics"]
    b, a = m["check_before"], m["check_after"]
    msg = (f"created generator version {rep['version']} from {rep['parent']} ({rep['votes_used']} votes, "
           f"{rep['prompts']} prompts, {rep['samples']} samples, {rep['steps']} steps, {m['minutes']} min); "
           f"check reward {b['reward']:+.3f} -> {a['reward']:+.3f}, key {b['CK']:.2f} -> {a['CK']:.2f}, "
           f"chords {b['ECM']:.2f} -> {a['ECM']:.2f}; "
           + ("selected" if rep["selected"] else
              ("not selected: control adherence dropped" if not rep["adherence_ok"] else "not selected (--no-select)")))
    return Result(data=rep, files=[rep["path"]], message=msg)


def models(ctx: JobContext, *, select: str | None = None, revert: bool = False) -> Result:
    from engines.core.errors import ParameterError
    from engines.feedback import versions as V

    if select and revert:
        raise ParameterError("give either --select VERSION or --revert, not both")
    action = None
    if select:
        V.select(ctx.home, select)
        action = f"selected {select}"
    elif revert:
        d = V.revert(ctx.home)
        action = f"reverted {d['reverted_from']} -> {d['selected']}"
    data: dict[str, Any] = V.list_versions(ctx.home)
    data["action"] = action
    lines = [action] if action else []
    for r in data["versions"]:
        mark = "*" if r["selected"] else " "
        met = r.get("metrics") or {}
        after = met.get("check_after") or {}
        extra = (f" parent {r['parent']}, {r['votes_used']} votes, reward {after.get('reward')}, "
                 f"key {after.get('CK')}, chords {after.get('ECM')}") if r["version"] != V.BASE else " shipped model"
        lines.append(f"{mark} {r['version']}:{extra}")
    return Result(data=data, message="\n".join(lines))
