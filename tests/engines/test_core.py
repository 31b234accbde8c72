"""Engine core: commands, parameters, jobs, data home, settings, plugins."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from engines.core import CancelToken, Command, JobContext, Param, ParameterError, Registry, Result
from engines.core.atomic import atomic_path, atomic_write_text
from engines.core.errors import CancelledError, CorruptFileError, NotFoundError
from engines.core.home import DataHome, Settings
from engines.core.plugins import load_plugins


def _double(ctx: JobContext, *, n: int, label: str) -> Result:
    for i in range(3):
        ctx.check()
        ctx.progress((i + 1) / 3, f"step {i + 1}")
    return Result(data={"n": n * 2, "label": label})


def make_registry() -> Registry:
    reg = Registry()
    reg.register(Command("demo.double", "Double", _double, params=(
        Param("n", "int", required=True, positional=True, minimum=0, maximum=100),
        Param("label", "str", default="x"),
    )))
    return reg


def test_command_runs_with_validated_params_and_reports_progress(home: DataHome) -> None:
    reg = make_registry()
    seen: list[tuple[float, str]] = []
    ctx = JobContext(home=home, on_progress=lambda f, m: seen.append((f, m)))
    result = reg.run("demo.double", ctx, {"n": "21"})
    assert result.data == {"n": 42, "label": "x"}
    assert seen[-1] == (1.0, "step 3")


@pytest.mark.parametrize("params, fragment", [
    ({}, "missing required parameter 'n'"),
    ({"n": "abc"}, "n must be a int"),
    ({"n": 101}, "at most 100"),
    ({"n": -1}, "at least 0"),
    ({"n": 1, "colour": "red"}, "unknown parameter"),
])
def test_impossible_parameters_are_refused_with_a_clear_message(home: DataHome, params, fragment) -> None:
    with pytest.raises(ParameterError, match=fragment):
        make_registry().run("demo.double", JobContext(home=home), params)


def test_unknown_command_is_not_found(home: DataHome) -> None:
    with pytest.raises(NotFoundError, match="no command 'demo.triple'"):
        make_registry().run("demo.triple", JobContext(home=home))


def test_cancel_stops_a_job_between_steps(home: DataHome) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        make_registry().run("demo.double", JobContext(home=home, cancel=token), {"n": 1})


def test_choice_and_bool_params_coerce_cli_strings() -> None:
    assert Param("b", "bool").coerce("yes") is True
    assert Param("b", "bool").coerce("off") is False
    with pytest.raises(ParameterError):
        Param("b", "bool").coerce("maybe")
    with pytest.raises(ParameterError, match="one of a, b"):
        Param("c", "choice", choices=("a", "b")).coerce("z")
    assert Param("p", "paths").coerce("one.wav") == ["one.wav"]
    with pytest.raises(ParameterError):
        Param("f", "float").coerce("nan")


def test_errors_name_the_file() -> None:
    err = CorruptFileError("truncated WAV", path="/music/a.wav")
    assert str(err) == "/music/a.wav: truncated WAV"
    assert err.to_dict()["kind"] == "corrupt_file"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "votes.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["votes.json"]


def test_data_home_resolution_env_and_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "env"))
    assert DataHome().root == (tmp_path / "env").resolve()
    assert DataHome(tmp_path / "cli").root == (tmp_path / "cli").resolve()
    for sub in ("exports", "index", "models", "cache"):
        assert (tmp_path / "cli" / sub).is_dir()


def test_settings_persist_and_invalid_values_are_not_saved(home: DataHome) -> None:
    s = Settings(theme="dark", music_sample_rate=48000)
    home.save_settings(s)
    assert DataHome(home.root).load_settings() == s
    with pytest.raises(ParameterError):
        home.save_settings(Settings(music_sample_rate=12345))
    assert home.load_settings().music_sample_rate == 48000


def test_damaged_settings_file_falls_back_to_defaults_and_is_kept(home: DataHome) -> None:
    home.settings_path.write_text("{not json")
    assert home.load_settings() == Settings()
    assert home.settings_path.with_suffix(".json.damaged").read_text() == "{not json"


def test_sqlite_is_in_wal_mode(home: DataHome) -> None:
    con = home.connect()
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_installed_plugins_register_like_builtins() -> None:
    from engines.core.plugins import default_registry

    reg = default_registry()
    assert "settings.set" in reg
    assert "playlist.export" in reg
    assert reg.get("playlist.export").plugin == "playlist"
    names = {p.get("name") for p in reg.plugins if p["ok"]}
    assert {"core", "playlist"} <= names


def test_a_broken_plugin_is_reported_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('missing dependency foo')\n")
    (tmp_path / "future_plugin.py").write_text("MANIFEST = {'name': 'future', 'api': 99}\ndef enable(api): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = load_plugins(Registry(), extra_modules=("broken_plugin", "future_plugin"))
    info = {p["module"]: p for p in reg.plugins}
    assert not info["broken_plugin"]["ok"] and "missing dependency foo" in info["broken_plugin"]["error"]
    assert not info["future_plugin"]["ok"] and "plugin API 99" in info["future_plugin"]["error"]
    assert "settings.show" in reg  # the rest still loaded


def test_settings_commands_round_trip(home: DataHome) -> None:
    from engines.core.api import Studio

    studio = Studio(home)
    studio.run("settings.set", theme="light", music_sample_rate="48000")
    shown = studio.run("settings.show").data
    assert shown["theme"] == "light" and shown["music_sample_rate"] == 48000
    assert json.loads(home.settings_path.read_text())["theme"] == "light"
    with pytest.raises(ParameterError):
        studio.run("settings.set", theme="purple")


def test_progress_is_rate_limited_but_final_step_always_arrives(home: DataHome) -> None:
    seen: list[float] = []
    ctx = JobContext(home=home, on_progress=lambda f, _m: seen.append(f))
    for i in range(1000):
        ctx.progress(i / 1000)
    ctx.progress(1.0)
    assert len(seen) < 50 and seen[-1] == 1.0


def test_cancel_token_is_thread_safe() -> None:
    token = CancelToken()
    t = threading.Thread(target=token.cancel)
    t.start()
    t.join()
    assert token.cancelled
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_atomic_writes_get_normal_file_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    os.umask(old)
    target = atomic_write_text(tmp_path / "mix.wav", "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~old
