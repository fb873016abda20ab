"""``python -m nersemble_cube.cli``: the command line, as the ``nersemble-cube`` entry point runs it."""

import sys

from . import main

sys.exit(main())
