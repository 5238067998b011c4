"""``python -m sketchrnn.cli`` (and ``torchrun ... -m sketchrnn.cli train ...``)."""

import sys

from sketchrnn.cli import main

sys.exit(main())
