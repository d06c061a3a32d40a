"""``python -m microback``: the same as the ``microback`` command."""

import sys

from microback.cli import main

sys.exit(main())
