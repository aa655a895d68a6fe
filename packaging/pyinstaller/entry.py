"""Entry point of the frozen app: the same as `python -m app`."""
import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the contamination check's worker processes
    sys.exit(main())
