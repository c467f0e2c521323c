"""``python -m solver`` is the same as the ``ssbfrac`` command."""

import sys

from solver.cli import main

sys.exit(main())
