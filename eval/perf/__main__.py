"""``python -m geoforensics.eval.perf child TASK JSON``: one measurement subprocess
(:func:`~geoforensics.eval.perf.children.child_main`)."""

from __future__ import annotations

import sys

from geoforensics.eval.perf.children import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
