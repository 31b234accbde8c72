"""Export the preference store (TRL JSONL, a self-contained bundle, CSV) and import bundles.

Formats (``docs/preferences.md`` has the schemas and a worked example):

``trl``
    ``PATH`` (``.jsonl``): one row per decisive vote (A or B) with ``prompt``, ``chosen``,
    ``rejected`` (audio file paths: the store's copies) plus metadata columns; ties and
    both-bad votes go to ``<stem>_ties.jsonl`` beside it (``audio_a``, ``audio_b``, ``choice``
    instead of chosen/rejected). Loads with ``datasets.load_dataset("json", data_files=PATH)``.
``bundle``
    A folder (or a ``.zip`` when ``PATH`` ends in ``.zip``) holding ``audio/``, ``midi/``,
    ``video/`` (content-hashed copies), ``pairs.jsonl`` (every pair, with its vote or null —
    what ``import`` reads), ``preferences.jsonl`` + ``preferences_ties.jsonl`` (TRL rows with
    paths relative to the bundle), ``votes.csv``, ``README.md`` (the dataset card) and
    ``manifest.json`` (size and SHA-256 of every file).
``csv``
    ``PATH`` (``.csv``): one row per vote.

Every file is written to a temporary name and renamed into place (a bundle folder is built
beside the target and renamed), so a kill during an export never leaves a half-written file
under the final name. Import checks the whole bundle (every row, every file against the
manifest) before it writes anything, then adds everything in one transaction.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engines.core.atomic import atomic_path, file_digest, fsync_dir
from engines.core.errors import (
    CorruptFileError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.feedback.store import (
    CHOICES,
    KINDS,
    SOURCES,
    Candidate,
    Pair,
    PreferenceStore,
    Vote,
    check_listens,
)

__all__ = ["BUNDLE_FORMAT", "FORMATS", "export", "import_bundle", "trl_rows"]

FORMATS = ("trl", "bundle", "csv")
BUNDLE_FORMAT = "cue-studio-preferences"
BUNDLE_VERSION = 1
#: a zip bundle that would unpack to more than this is refused
MAX_BUNDLE_BYTES = 16 * 2**30
_SHA_CHARS = set("0123456789abcdef")

PathFn = Callable[[Path | None], str | None]

CSV_COLUMNS = (
    "pair_id", "vote_id", "kind", "prompt", "choice", "reason", "rater", "decision_ms", "n_listens",
    "vote_time", "vote_created", "pair_created", "source", "controls", "video",
    "a_audio", "a_label", "a_model", "a_model_version", "a_seed", "a_sha", "a_midi", "a_meta",
    "b_audio", "b_label", "b_model", "b_model_version", "b_seed", "b_sha", "b_midi", "b_meta", "listens",
)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


def _abs(p: Path | None) -> str | None:
    return None if p is None else str(p)


def ties_path(out: Path) -> Path:
    """``prefs.jsonl`` -> ``prefs_ties.jsonl``."""
    return out.with_name(f"{out.stem}_ties{out.suffix}")


# --------------------------------------------------------------------------- rows

def _side_cols(prefix: str, c: Candidate, path: PathFn) -> dict[str, Any]:
    return {f"{prefix}_label": c.label, f"{prefix}_model": c.model, f"{prefix}_model_version": c.model_version,
            f"{prefix}_seed": c.seed, f"{prefix}_sha": c.sha, f"{prefix}_midi": path(c.midi),
            f"{prefix}_meta": _dumps(c.meta)}


def _common_cols(p: Pair, v: Vote, path: PathFn) -> dict[str, Any]:
    return {"pair_id": p.pair_id, "vote_id": v.vote_id, "kind": p.kind, "source": p.source, "choice": v.choice,
            "rater": v.rater, "reason": v.reason, "decision_ms": v.decision_ms, "n_listens": len(v.listens),
            "listens": _dumps(v.listens), "created": v.created, "pair_created": p.created,
            "controls": _dumps(p.controls), "video": path(p.video)}


def trl_rows(votes: Sequence[tuple[Pair, Vote]], path: PathFn = _abs
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(preference rows, tie / both-bad rows)`` in TRL's preference format.

    Preference rows: ``prompt``, ``chosen``, ``rejected`` (audio paths given by ``path``) and
    metadata columns (``chosen_side`` says which of A/B won). Tie rows: ``prompt``,
    ``audio_a``, ``audio_b`` and the same metadata with ``a_`` / ``b_`` prefixes.
    """
    prefs: list[dict[str, Any]] = []
    ties: list[dict[str, Any]] = []
    for p, v in votes:
        if v.choice in ("a", "b"):
            win, lose = (p.a, p.b) if v.choice == "a" else (p.b, p.a)
            row: dict[str, Any] = {"prompt": p.prompt, "chosen": path(win.audio), "rejected": path(lose.audio),
                                   "chosen_side": v.choice}
            row.update(_common_cols(p, v, path))
            row.update(_side_cols("chosen", win, path))
            row.update(_side_cols("rejected", lose, path))
            prefs.append(row)
        else:
            row = {"prompt": p.prompt, "audio_a": path(p.a.audio), "audio_b": path(p.b.audio)}
            row.update(_common_cols(p, v, path))
            row.update(_side_cols("a", p.a, path))
            row.update(_side_cols("b", p.b, path))
            ties.append(row)
    return prefs, ties


def _jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")


def _csv(votes: Sequence[tuple[Pair, Vote]], path: PathFn = _abs) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for p, v in votes:
        row: dict[str, Any] = {
            "pair_id": p.pair_id, "vote_id": v.vote_id, "kind": p.kind, "prompt": p.prompt, "choice": v.choice,
            "reason": v.reason, "rater": v.rater, "decision_ms": "" if v.decision_ms is None else v.decision_ms,
            "n_listens": len(v.listens), "listens": _dumps(v.listens),
            "vote_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.created)),
            "vote_created": f"{v.created:.3f}", "pair_created": f"{p.created:.3f}", "source": p.source,
            "controls": _dumps(p.controls), "video": path(p.video) or ""}
        for prefix, c in (("a", p.a), ("b", p.b)):
            row.update({f"{prefix}_audio": path(c.audio), f"{prefix}_label": c.label, f"{prefix}_model": c.model,
                        f"{prefix}_model_version": c.model_version,
                        f"{prefix}_seed": "" if c.seed is None else c.seed, f"{prefix}_sha": c.sha,
                        f"{prefix}_midi": path(c.midi) or "", f"{prefix}_meta": _dumps(c.meta)})
        w.writerow(row)
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- export

def export(store: PreferenceStore, fmt: str, out: str | os.PathLike[str],
           progress: Callable[[float, str], None] | None = None) -> list[Path]:
    """Write the store in ``fmt`` (``trl``, ``bundle`` or ``csv``) to ``out``; return the files written."""
    if fmt not in FORMATS:
        raise ParameterError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    out = Path(out)
    prog = progress or (lambda f, m: None)  # noqa: ARG005
    _sweep_stale(out)
    votes = store.votes()
    if fmt == "trl":
        if out.suffix.lower() not in (".jsonl", ".json"):
            raise ParameterError("a TRL export is a .jsonl file", path=out)
        prefs, ties = trl_rows(votes)
        t_out = ties_path(out)
        with atomic_path(out) as tmp:
            tmp.write_bytes(_jsonl(prefs))
        with atomic_path(t_out) as tmp:
            tmp.write_bytes(_jsonl(ties))
        return [out, t_out]
    if fmt == "csv":
        if out.suffix.lower() != ".csv":
            raise ParameterError("a CSV export is a .csv file", path=out)
        with atomic_path(out) as tmp:
            tmp.write_bytes(_csv(votes))
        return [out]
    return [_export_bundle(store, out, prog)]


def _bundle_contents(store: PreferenceStore) -> tuple[dict[str, bytes], dict[str, Path]]:
    """``(generated text files by name, media files by bundle path -> blob path)``."""
    pairs = store.pairs()
    media: dict[str, Path] = {}
    back: dict[Path, str] = {}

    def rel(p: Path | None, folder: str) -> str | None:
        if p is None:
            return None
        r = back.setdefault(p, f"{folder}/{p.name}")
        media[r] = p
        return r

    def rel_known(p: Path | None) -> str | None:
        return None if p is None else back[p]

    rows = []
    for p in pairs:
        d = p.to_dict()
        d["video"] = rel(p.video, "video")
        for side, c in (("a", p.a), ("b", p.b)):
            d[side]["audio"] = rel(c.audio, "audio")
            d[side]["midi"] = rel(c.midi, "midi")
            d[side]["video"] = rel(c.video, "video")
        rows.append(d)
    votes = [(p, p.vote) for p in pairs if p.vote is not None]
    votes.sort(key=lambda pv: pv[1].created)
    prefs, ties = trl_rows(votes, rel_known)
    files = {
        "pairs.jsonl": _jsonl(rows),
        "preferences.jsonl": _jsonl(prefs),
        "preferences_ties.jsonl": _jsonl(ties),
        "votes.csv": _csv(votes, rel_known),
    }
    files["README.md"] = dataset_card(pairs, votes, n_media=len(media)).encode("utf-8")
    return files, media


def _manifest(files: dict[str, bytes], media: dict[str, Path], counts: dict[str, Any]) -> bytes:
    entries: dict[str, dict[str, Any]] = {}
    for name, data in files.items():
        entries[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    for name, src in media.items():
        entries[name] = {"bytes": src.stat().st_size, "sha256": src.stem}
    m = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "created": time.time(), "counts": counts,
         "files": dict(sorted(entries.items()))}
    return (json.dumps(m, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _export_bundle(store: PreferenceStore, out: Path, prog: Callable[[float, str], None]) -> Path:
    files, media = _bundle_contents(store)
    st = store.stats()
    counts = {"pairs": st["pairs"], "votes": st["votes"], "pending": st["pending"], "by_choice": st["by_choice"],
              "by_kind": st["by_kind"], "media_files": len(media)}
    manifest = _manifest(files, media, counts)
    if out.suffix.lower() == ".zip":
        with atomic_path(out) as tmp:
            with zipfile.ZipFile(tmp, "w") as z:
                for name, data in files.items():
                    z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
                for i, (name, src) in enumerate(sorted(media.items())):
                    prog(i / max(1, len(media)), f"adding {name}")
                    z.write(src, name, compress_type=zipfile.ZIP_STORED)
                z.writestr("manifest.json", manifest, compress_type=zipfile.ZIP_DEFLATED)
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ParameterError("already exists; choose another --out or remove it first", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        for name, data in files.items():
            _write_synced(tmp_dir / name, data)
        for i, (name, src) in enumerate(sorted(media.items())):
            prog(i / max(1, len(media)), f"copying {name}")
            dst = tmp_dir / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            with open(dst, "rb+") as fh:
                os.fsync(fh.fileno())
        _write_synced(tmp_dir / "manifest.json", manifest)
        for sub in ("audio", "midi", "video", "."):
            fsync_dir(tmp_dir / sub)
        os.chmod(tmp_dir, 0o755)
        if out.is_dir():
            out.rmdir()  # empty: checked above
        os.replace(tmp_dir, out)
        fsync_dir(out.parent)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return out


def _sweep_stale(out: Path, *, older_than: float = 3600.0) -> None:
    """Remove temporary files of exports to ``out`` (and its ties file) that were killed long ago."""
    now = time.time()
    for target in (out, ties_path(out)):
        if not target.parent.is_dir():
            continue
        for p in target.parent.glob(f".{target.name}.*.part"):
            try:
                if now - p.lstat().st_mtime > older_than:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            except OSError:
                pass


def _write_synced(p: Path, data: bytes) -> None:
    with open(p, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def dataset_card(pairs: Sequence[Pair], votes: Sequence[tuple[Pair, Vote]], *, n_media: int) -> str:
    """The bundle's ``README.md``: what it holds, counts, schema, how to load it."""
    by_choice = Counter(v.choice for _, v in votes)
    by_kind = Counter(p.kind for p, _ in votes)
    raters = Counter(v.rater for _, v in votes)
    models = Counter(f"{c.model or '(none)'} {c.model_version}".strip() for p in pairs for c in (p.a, p.b))
    decisive = by_choice["a"] + by_choice["b"]
    pend = sum(1 for p in pairs if p.vote is None)
    ms = sorted(v.decision_ms for _, v in votes if v.decision_ms is not None)
    med = f"{ms[len(ms) // 2] / 1000:.1f} s" if ms else "n/a"

    def table(c: Counter[str], keys: Sequence[str] | None = None) -> str:
        ks = list(keys) if keys is not None else sorted(c)
        return "\n".join(f"| {k} | {c[k]} |" for k in ks) or "| (none) | 0 |"

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"""---
pretty_name: Cue Studio pairwise music preferences
task_categories:
- audio-classification
tags:
- preference
- rlhf
- dpo
- music
configs:
- config_name: preferences
  data_files: preferences.jsonl
- config_name: ties
  data_files: preferences_ties.jsonl
---

# Cue Studio preference bundle

Pairwise A/B judgements of music made or found with Cue Studio, exported {when}.
Each pair is two candidates for the same prompt/controls (two generations) or the same
video/text query (two library tracks); a rater listened to both and chose A, B, tie or
both bad. The audio the rater heard is included (content-hashed copies).

## Counts

| | |
| --- | --- |
| pairs | {len(pairs)} |
| votes | {len(votes)} |
| decisive votes (rows of `preferences.jsonl`) | {decisive} |
| tie / both bad (rows of `preferences_ties.jsonl`) | {by_choice['tie'] + by_choice['both_bad']} |
| pending pairs (no vote; in `pairs.jsonl` only) | {pend} |
| media files | {n_media} |
| median decision time | {med} |

Votes by choice:

| choice | votes |
| --- | --- |
{table(by_choice, CHOICES)}

Votes by kind of pair:

| kind | votes |
| --- | --- |
{table(by_kind, KINDS)}

Votes by rater:

| rater | votes |
| --- | --- |
{table(raters)}

Candidates by model:

| model version | candidates |
| --- | --- |
{table(models)}

## Files

- `preferences.jsonl`: Hugging Face TRL preference rows, one per decisive vote:
  `prompt` (str), `chosen`, `rejected` (audio paths relative to this folder), `chosen_side`
  (`a`/`b`), and metadata: `pair_id`, `vote_id`, `kind`, `source`, `choice`, `rater`,
  `reason`, `decision_ms` (int or null), `n_listens`, `listens` (JSON string of
  `[{{side, t, pos, action}}]`), `created` (vote time, Unix s), `pair_created`, `controls`
  (JSON string), `video` (clip path or null), and for each of `chosen_` / `rejected_`:
  `label`, `model`, `model_version`, `seed`, `sha` (SHA-256 of the audio), `midi`, `meta`
  (JSON string).
- `preferences_ties.jsonl`: the tie and both-bad votes, `prompt`, `audio_a`, `audio_b` and the
  same metadata with `a_` / `b_` prefixes.
- `pairs.jsonl`: every pair (voted or pending) as Cue Studio stores it, with `vote` inside or
  null; this is what `studio prefs import` reads.
- `votes.csv`: one row per vote, for spreadsheets.
- `audio/`, `midi/`, `video/`: the files, named `<sha256>.<ext>`.
- `manifest.json`: size and SHA-256 of every file; import refuses a bundle that does not match.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("json", data_files="preferences.jsonl", split="train")
```

or merge into another Cue Studio: `studio prefs import THIS_FOLDER`.

## Caveats

Votes are one person's (or a scripted rater's) taste, on short excerpts. Library tracks in
video pairs are the rater's own files: check their rights before sharing this bundle.
"""


# --------------------------------------------------------------------------- import

def _safe_member(name: str) -> bool:
    p = Path(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name and ":" not in name


@contextlib.contextmanager
def _opened_bundle(bundle: Path, scratch: Path) -> Iterator[Path]:
    if not bundle.exists():
        raise NotFoundError("bundle not found", path=bundle)
    if bundle.is_dir():
        yield bundle
        return
    if not zipfile.is_zipfile(bundle):
        with open(bundle, "rb") as fh:
            head = fh.read(4)
        if head.startswith(b"PK") or bundle.suffix.lower() == ".zip":
            raise CorruptFileError("the zip is damaged or truncated (no central directory)", path=bundle)
        raise UnsupportedFormatError("not a preference bundle (neither a folder nor a .zip)", path=bundle)
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="import.", dir=scratch))
    try:
        try:
            with zipfile.ZipFile(bundle) as z:
                infos = z.infolist()
                total = sum(i.file_size for i in infos)
                if total > MAX_BUNDLE_BYTES:
                    raise ResourceLimitError(f"the bundle would unpack to {total / 2**30:.1f} GiB "
                                             f"(limit {MAX_BUNDLE_BYTES / 2**30:.0f} GiB)", path=bundle)
                for i in infos:
                    if not _safe_member(i.filename):
                        raise CorruptFileError(f"unsafe file name in the bundle: {i.filename!r}", path=bundle)
                z.extractall(tmp)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CorruptFileError(f"the zip is damaged or truncated: {exc}", path=bundle) from None
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rel_ok(value: Any) -> bool:
    return isinstance(value, str) and _safe_member(value)


def _check_row(d: Any, where: str) -> None:
    """Raise CorruptFileError naming ``where`` (``pairs.jsonl line N``) when a pair row is bad."""
    def bad(msg: str) -> CorruptFileError:
        return CorruptFileError(f"{where}: {msg}")

    if not isinstance(d, dict):
        raise bad("not a JSON object")
    if d.get("kind") not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}; got {d.get('kind')!r}")
    if d.get("source", "import") not in SOURCES:
        raise bad(f"unknown source {d.get('source')!r}")
    if not isinstance(d.get("prompt", ""), str):
        raise bad("prompt must be text")
    if not isinstance(d.get("controls", {}), dict):
        raise bad("controls must be an object")
    if d.get("video") is not None and not _rel_ok(d["video"]):
        raise bad(f"bad video path {d['video']!r}")
    created = d.get("created")
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created):
        raise bad("created must be a time in seconds")
    for side in ("a", "b"):
        c = d.get(side)
        if not isinstance(c, dict):
            raise bad(f"candidate {side!r} is missing")
        if not _rel_ok(c.get("audio")):
            raise bad(f"candidate {side}: bad audio path {c.get('audio')!r}")
        for k in ("midi", "video"):
            if c.get(k) is not None and not _rel_ok(c[k]):
                raise bad(f"candidate {side}: bad {k} path {c[k]!r}")
        sha = c.get("sha")
        if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _SHA_CHARS:
            raise bad(f"candidate {side}: sha must be a SHA-256 hex digest")
        if Path(c["audio"]).stem != sha:
            raise bad(f"candidate {side}: audio file name does not match its sha")
        if c.get("seed") is not None and (isinstance(c["seed"], bool) or not isinstance(c["seed"], int)):
            raise bad(f"candidate {side}: seed must be a whole number or null")
        if not isinstance(c.get("meta", {}), dict):
            raise bad(f"candidate {side}: meta must be an object")
    v = d.get("vote")
    if v is None:
        return
    if not isinstance(v, dict):
        raise bad("vote must be an object or null")
    if not isinstance(v.get("vote_id"), str) or not v["vote_id"]:
        raise bad("vote has no vote_id")
    if v.get("choice") not in CHOICES:
        raise bad(f"vote choice must be one of {', '.join(CHOICES)}; got {v.get('choice')!r}")
    vc = v.get("created")
    if isinstance(vc, bool) or not isinstance(vc, (int, float)) or not math.isfinite(vc):
        raise bad("vote created must be a time in seconds")
    ms = v.get("decision_ms")
    if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 0):
        raise bad(f"decision_ms must be a whole number >= 0 or null; got {ms!r}")
    try:
        check_listens(v.get("listens") or [])
    except ParameterError as exc:
        raise bad(str(exc)) from None


def read_bundle(root: Path, label: Path) -> list[dict[str, Any]]:
    """Validate an unpacked bundle completely; return its pair rows. Nothing is written.

    Errors name the bundle (``label``) and the bad file or ``pairs.jsonl line N``.
    """
    man_p = root / "manifest.json"
    if not man_p.is_file():
        raise CorruptFileError("not a preference bundle: manifest.json is missing", path=label)
    try:
        manifest = json.loads(man_p.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptFileError(f"manifest.json is damaged: {exc}", path=label) from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise CorruptFileError("manifest.json: not a Cue Studio preference bundle", path=label)
    if int(manifest.get("version") or 0) > BUNDLE_VERSION:
        raise UnsupportedFormatError(f"bundle version {manifest.get('version')} is newer than this app "
                                     f"reads ({BUNDLE_VERSION}); update Cue Studio", path=label)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise CorruptFileError("manifest.json has no file list", path=label)
    pairs_p = root / "pairs.jsonl"
    if not pairs_p.is_file():
        raise CorruptFileError("pairs.jsonl is missing", path=label)
    rows: list[dict[str, Any]] = []
    raw = pairs_p.read_bytes()
    if raw and not raw.endswith(b"\n"):
        n = raw.count(b"\n") + 1
        raise CorruptFileError(f"pairs.jsonl line {n}: truncated (the file does not end with a full line)",
                               path=label)
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"pairs.jsonl line {n}"
        try:
            d = json.loads(line)
        except ValueError as exc:
            raise CorruptFileError(f"{where}: not valid JSON ({exc})", path=label) from None
        try:
            _check_row(d, where)
        except CorruptFileError as exc:
            raise CorruptFileError(exc.problem, path=label) from None
        refs = [d["video"], *(d[s].get(k) for s in ("a", "b") for k in ("audio", "midi", "video"))]
        for r in refs:
            if r is None:
                continue
            if not (root / r).is_file():
                raise NotFoundError(f"{where}: the bundle has no file {r}", path=label)
            if r not in listed:
                raise CorruptFileError(f"{where}: {r} is not in manifest.json", path=label)
        rows.append(d)
    for name, info in listed.items():
        if not _rel_ok(name) or not isinstance(info, dict):
            raise CorruptFileError(f"manifest.json: bad entry {name!r}", path=label)
        f = root / name
        if not f.is_file():
            raise NotFoundError(f"{name} is listed in manifest.json but missing", path=label)
        if f.stat().st_size != info.get("bytes") or file_digest(f) != info.get("sha256"):
            raise CorruptFileError(f"{name} does not match manifest.json (truncated or edited)", path=label)
    return rows


def import_bundle(store: PreferenceStore, bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """Merge a bundle (folder or .zip) into ``store``; all or nothing.

    Returns ``{"added", "duplicates", "pair_ids"}`` (see :meth:`PreferenceStore.merge`).
    """
    b = Path(bundle).expanduser()
    with _opened_bundle(b, store.home.cache / "prefs_import") as root:
        rows = read_bundle(root, b)
        return store.merge(rows, root=root)
