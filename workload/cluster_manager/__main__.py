"""Entry point for `python -m cluster_manager`."""

import sys

from .cli import main

sys.exit(main())
