"""``python -m studio [--home DIR]``: open the app."""

from __future__ import annotations

import argparse

from studio.app import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m studio", description="Open the Cue Studio desktop app.")
    parser.add_argument("--home", metavar="DIR", help="data home (default: $STUDIO_HOME or the platform's)")
    raise SystemExit(main(parser.parse_args().home))
