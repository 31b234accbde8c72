"""Built-in app commands: settings and plugin information.

Registered through the ``cue_studio.plugins`` entry point like every other command set.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from engines.core.home import DEVICES, SAMPLE_RATES, THEMES, Settings
from engines.core.jobs import JobContext
from engines.core.plugin_api import Param, PluginAPI, Result

MANIFEST = {
    "name": "core",
    "version": "1.0",
    "api": 1,
    "description": "Settings and plugin information",
}


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="settings.show", title="Show settings", handler=show_settings, runs_in="local",
        description="Print the data home and the persisted settings.",
    )
    api.register_command(
        id="settings.set", title="Change settings", handler=set_settings, runs_in="local",
        description="Change one or more settings; values are checked before anything is saved.",
        params=(
            Param("soundfont", "path", help="SoundFont (SF2/SF3) for rendering; '' = bundled GM"),
            Param("music_sample_rate", "choice", choices=tuple(str(r) for r in SAMPLE_RATES),
                  help="sample rate of rendered music"),
            Param("compute_device", "choice", choices=DEVICES, help="where models run"),
            Param("theme", "choice", choices=THEMES, help="colour theme"),
            Param("wav_bits", "choice", choices=("16", "24"), help="bits per sample of written WAVs"),
        ),
    )
    api.register_command(
        id="app.plugins", title="List plugins", handler=list_plugins, runs_in="local",
        description="Every command set (built-in and third-party), its version and whether it loaded.",
    )


def show_settings(ctx: JobContext) -> Result:
    s = ctx.home.load_settings()
    data = {"home": str(ctx.home.root), **asdict(s)}
    lines = [f"{k}: {v}" for k, v in data.items()]
    return Result(data=data, message="\n".join(lines))


def set_settings(ctx: JobContext, **changes: object) -> Result:
    current = asdict(ctx.home.load_settings())
    types = {f.name: f.type for f in fields(Settings)}
    for name, value in changes.items():
        if value is None:
            continue
        current[name] = int(value) if types[name] in ("int", int) else value  # type: ignore[call-overload]
    new = Settings.from_dict(current)
    ctx.home.save_settings(new)  # validates first; nothing is written on error
    return Result(data=asdict(new), files=[str(ctx.home.settings_path)], message="Settings saved")


def list_plugins(ctx: JobContext) -> Result:  # noqa: ARG001
    from engines.core.plugins import default_registry

    reg = default_registry()
    rows = []
    for info in reg.plugins:
        name = str(info.get("name", info.get("entry_point")))
        rows.append({
            "name": name, "version": info.get("version", ""), "ok": info.get("ok", False),
            "error": info.get("error", ""), "module": info.get("module", ""),
            "commands": [c.id for c in reg.all() if c.plugin == name],
        })
    return Result(data=rows, message="\n".join(
        f"{r['name']:<12} {r['version']:<6} {'ok' if r['ok'] else 'FAILED: ' + r['error']}" for r in rows))
