"""``python -m hw.synth``: runs the command line of hw.synth.cli."""

import sys

from hw.synth.cli import main

sys.exit(main())
