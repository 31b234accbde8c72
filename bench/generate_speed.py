"""Wall time of the generate engine: 8 bars of 4 tracks (MIDI + mix + stems), median of 10; and 64 bars.

    nice -n 10 python bench/generate_speed.py [--model default] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.generate.engine import Engine, GenerateRequest  # noqa: E402

PROMPT = "pop in A minor, 100 bpm, chords Am F C G"
INSTRUMENTS = "flute,piano,electric bass,drums"  # melody (model), harmony + bass (style), drums


def timed(eng: Engine, bars: int, seed: int, out: str, instruments: str = INSTRUMENTS) -> float:
    t = time.perf_counter()
    eng.generate(GenerateRequest(text=PROMPT, bars=bars, instruments=instruments, seed=seed, out_dir=out))
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args(argv)
    eng = Engine.from_pretrained(a.model)
    with tempfile.TemporaryDirectory() as out:
        timed(eng, 8, 0, out)  # warm-up: imports, SoundFont load, numba
        t8 = [timed(eng, 8, s, out) for s in range(a.repeats)]
        t64 = [timed(eng, 64, s, out) for s in range(3)]
    print(f"8 bars, 4 tracks (MIDI + mix + stems): median {statistics.median(t8):.2f} s over {len(t8)} "
          f"(min {min(t8):.2f}, max {max(t8):.2f})")
    print(f"64 bars, 4 tracks: median {statistics.median(t64):.2f} s over {len(t64)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
