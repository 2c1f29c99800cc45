"""``python -m stepedit_core.train --help``: the training command line (:mod:`stepedit_core.train.cli`)."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
