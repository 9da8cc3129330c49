"""``python -m geoforensics.core`` runs the command line."""

import sys

from geoforensics.core.cli import main

sys.exit(main())
