"""Sheet engine quality: snippet retrieval, piece identification, alignment (held-out pieces).

    nice -n 10 python -m engines.sheet.data --out data/sheet --train 320 --test 205   # once
    nice -n 10 python -m bench.sheet_eval [--model default] [--json bench/out/sheet_eval.json]

The protocol is :mod:`engines.sheet.eval`; this wrapper only fixes the output path.
"""

from __future__ import annotations

import sys

from engines.sheet.eval import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--json" not in argv:
        argv += ["--json", "bench/out/sheet_eval.json"]
    main(argv)
