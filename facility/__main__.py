"""`python -m facility` is the `facility` command."""

import sys

from facility.cli import run

sys.exit(run())
