"""``python -m sigforge`` is the ``sigforge`` command."""

import multiprocessing
import sys

from sigforge.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
