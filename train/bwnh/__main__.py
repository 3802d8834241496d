import sys

from train.bwnh.cli import main

sys.exit(main())
