"""python -m labgen: the same as the labgen command."""

import sys

from .cli import main

sys.exit(main())
