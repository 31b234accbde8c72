"""Sheet engine on a held-out engraving style: the LilyPond documentation's snippets.

    nice -n 10 python -m bench.sheet_eval_lilypond [--model default] [--json bench/out/sheet_eval_lilypond.json]

Needs Debian's ``lilypond-doc`` (``/usr/share/doc/lilypond/html/Documentation``) and the
verovio held-out split (``python -m engines.sheet.data``) for the comparison and distractors.
The protocol is :mod:`engines.sheet.eval_lilypond`; this wrapper only fixes the output path.
"""

from __future__ import annotations

import sys

from engines.sheet.eval_lilypond import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--json" not in argv:
        argv += ["--json", "bench/out/sheet_eval_lilypond.json"]
    main(argv)
