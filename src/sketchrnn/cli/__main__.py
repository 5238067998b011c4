"""``python -m sketchrnn.cli`` (and ``torchrun ... -m sketchrnn.cli train ...``)."""

import sys

from sketchrnn.cli import main

if __name__ == "__main__":  # importing the module (pydoc, the docs build) runs nothing
    sys.exit(main())
