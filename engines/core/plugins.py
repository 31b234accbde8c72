"""Plugin loading: built-in command sets and third-party plugins alike.

Every command set — the app's own and any plugin's — is a module named by an entry
point in the group ``cue_studio.plugins``. The module has a versioned manifest and an
``enable(api)`` function::

    MANIFEST = {"name": "playlist-export", "version": "1.0", "api": 1,
                "description": "Export tracks as M3U/CSV playlists"}

    def enable(api: PluginAPI) -> None:
        api.register_command(id="playlist.export", title="Export playlist", ...)

``api`` (:class:`engines.core.plugin_api.PluginAPI`) is the only surface a plugin sees.
A plugin that fails to load is reported and skipped; the app goes on.
"""

from __future__ import annotations

import functools
import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from engines.core.plugin_api import API_VERSION, PluginAPI
from engines.core.registry import Registry

GROUP = "cue_studio.plugins"
log = logging.getLogger(__name__)


def load_plugins(
    registry: Registry, *, extra_modules: tuple[str, ...] = (), installed: bool = True
) -> Registry:
    """Enable every installed plugin (entry points, unless ``installed=False``) and ``extra_modules``."""
    specs: list[tuple[str, str]] = (
        [(ep.name, ep.value) for ep in entry_points(group=GROUP)] if installed else []
    )
    specs += [(m.rsplit(".", 1)[-1], m) for m in extra_modules]
    seen: set[str] = set()
    for name, target in sorted(specs, key=lambda s: (not s[1].startswith("engines."), s[0])):
        if target in seen:
            continue
        seen.add(target)
        info: dict[str, Any] = {"entry_point": name, "module": target, "ok": False}
        try:
            module = importlib.import_module(target.partition(":")[0])
            manifest = dict(getattr(module, "MANIFEST", {}))
            info.update(manifest)
            api_needed = int(manifest.get("api", 1))
            if api_needed > API_VERSION:
                raise RuntimeError(f"needs plugin API {api_needed}, this app has {API_VERSION}")
            module.enable(PluginAPI(registry, plugin=str(manifest.get("name", name))))
            info["ok"] = True
        except Exception as exc:  # one broken plugin never stops the app
            info["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s (%s) failed to load: %s", name, target, exc)
        registry.plugins.append(info)
    return registry


@functools.cache
def default_registry() -> Registry:
    """The process-wide registry with every installed command set enabled."""
    return load_plugins(Registry())
