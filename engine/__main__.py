"""`python -m engine ...` runs the `policy` command line."""

import sys

from engine.cli import main

sys.exit(main())
