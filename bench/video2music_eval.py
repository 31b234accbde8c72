"""Video → music evaluation: own-soundtrack retrieval, steering, refinement.

    nice -n 10 python -m bench.video2music_eval --work /tmp/v2m_eval

See :mod:`engines.video2music.eval` for the protocol and what the clips are.
"""

from __future__ import annotations

import argparse
import json

from engines.video2music.eval import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", default="/tmp/v2m_eval")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    res = run(a.work, epochs=a.epochs, seed=a.seed, log=lambda *x: print(*x, flush=True))
    print(json.dumps({k: v for k, v in res.items() if k != "model_config"}, indent=1))


if __name__ == "__main__":
    main()
