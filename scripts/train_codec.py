"""Historical entry point kept for the commands recorded in model cards; same as
``ric train codec RECIPE --out DIR --run DIR [...]``."""

import sys

from ric.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(["train", "codec", *[("--output" if a == "--out" else a) for a in argv]]))
