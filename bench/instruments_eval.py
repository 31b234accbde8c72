"""Quality of the instrument retrieval model: the paper's protocol and real recordings.

    nice -n 10 python -m bench.instruments_eval [--model default] [--mixtures 300] [--json FILE]

Runs :func:`engines.instruments.eval.evaluate` (53 instruments of sf_GMbank never heard in
training; library = those instruments, then grown to every preset of every SoundFont; by GM
family; single-encoder EER) and :func:`engines.instruments.eval.evaluate_real` (mixtures of
2-4 real recorded sonic-pi samples, library = those samples indexed by the app). Prints a
table with the paper's numbers alongside, and the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixtures", type=int, default=300)
    ap.add_argument("--json", help="also write the metrics here")
    args = ap.parse_args(argv)

    from engines.instruments.engine import Engine
    from engines.instruments.eval import PAPER, evaluate, evaluate_real

    engine = Engine.from_pretrained(args.model)
    m = evaluate(engine, seed=args.seed, n_mixtures=args.mixtures)
    try:
        m["real"] = evaluate_real(engine, seed=args.seed)
    except FileNotFoundError as exc:
        m["real"] = {"skipped": str(exc)}
    keys = ("f1_macro", "f1_weighted", "map_macro", "map_weighted")
    rows = [("paper (Nlakh, 53 unseen)", PAPER), ("ours: 53 unseen, library = them", m["unseen"]),
            (f"ours: library grown to {m['grown']['library']}", m["grown"])]
    if "f1_macro" in m["real"]:
        rows.append((f"ours: real samples ({m['real']['samples']})", m["real"]))
    print(f"{'setting':<40}" + "".join(f"{k:>14}" for k in keys))
    for name, d in rows:
        print(f"{name:<40}" + "".join(f"{d[k]:>14.3f}" for k in keys))
    print(f"single-encoder EER: ours {m['single_encoder_eer']:.3f}, paper {PAPER['eer']:.3f}")
    print(f"engine model: {engine.fingerprint}")
    text = json.dumps(m, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
