"""``python -m cosim.cli``: the same entry point as the installed ``cosim`` script."""

import sys

from cosim.cli import main

sys.exit(main())
