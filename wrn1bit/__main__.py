"""`python -m wrn1bit ...` = `wrn1bit ...`."""

import sys

from wrn1bit.cli import main

sys.exit(main())
