"""``python -m stepedit_core``: the command line (see :mod:`stepedit_core.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
