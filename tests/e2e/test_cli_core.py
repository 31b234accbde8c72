"""The ``studio`` command line as a user drives it (subprocesses, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STUDIO = [sys.executable, "-m", "engines.cli"]


def studio(*args: str, home: Path, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home)}
    return subprocess.run([*STUDIO, *args], capture_output=True, text=True, env=env, timeout=120, **kw)


def test_help_lists_command_groups_without_importing_torch(tmp_path: Path) -> None:
    code = ("import sys; from engines.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'PySide6' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "STUDIO_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "settings" in out.stdout and "playlist" in out.stdout


def test_commands_json_lists_every_command_with_params(tmp_path: Path) -> None:
    out = studio("commands", "--json", home=tmp_path)
    assert out.returncode == 0
    cmds = {c["id"]: c for c in json.loads(out.stdout)}
    assert "settings.set" in cmds
    assert {p["name"] for p in cmds["settings.set"]["params"]} >= {"theme", "soundfont"}


def test_settings_set_persists_and_bad_values_exit_2(tmp_path: Path) -> None:
    assert studio("settings", "set", "--theme", "dark", home=tmp_path).returncode == 0
    shown = json.loads(studio("settings", "show", "--json", home=tmp_path).stdout)
    assert shown["theme"] == "dark"
    bad = studio("settings", "set", "--theme", "purple", "--json", home=tmp_path)
    assert bad.returncode == 2
    assert "theme must be one of" in bad.stderr
    assert json.loads(bad.stdout)["error"]["kind"] == "parameter_error"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert studio("nosuchgroup", "verb", home=tmp_path).returncode == 2
    assert studio("settings", "nosuchverb", home=tmp_path).returncode == 2


def test_home_flag_overrides_env(tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert studio("--home", str(other), "settings", "set", "--theme", "light", home=tmp_path / "env").returncode == 0
    assert json.loads((other / "settings.json").read_text())["theme"] == "light"
    assert not (tmp_path / "env" / "settings.json").exists()


def test_script_runs_against_the_public_api(tmp_path: Path) -> None:
    script = tmp_path / "my_script.py"
    script.write_text(
        "import sys\n"
        "from engines.core.api import Studio\n"
        "s = Studio()\n"
        "s.run('settings.set', theme=sys.argv[1])\n"
        "print('theme is', s.run('settings.show').data['theme'])\n"
    )
    out = studio("script", str(script), "light", home=tmp_path / "h")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "theme is light"
    missing = studio("script", str(tmp_path / "nope.py"), home=tmp_path / "h")
    assert missing.returncode == 2 and "no such script" in missing.stderr
