"""``python -m ric.cli ...``: the same as the ``ric`` command."""

import sys

from ric.cli import main

sys.exit(main())
