"""`python -m flows build | verify | verify-hw` (flows/cli.py)."""

import sys

from flows.cli import main

sys.exit(main())
