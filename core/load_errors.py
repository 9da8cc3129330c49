"""One-line reasons for files that ``torch.load(..., weights_only=True)`` refuses.

torch's refusal spans many lines with terminal colour codes and advice to load the file
unsafely; the CLI's contract is one line naming the file. The useful part is which pickled
global the file wanted to run (``Unsupported global: GLOBAL builtins.open``), so that is what
the line says.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load_error_summary(error: BaseException) -> str:
    """``Type: first line`` of an exception, or for a refused pickle the global it named."""
    text = _ANSI.sub("", str(error))
    found = _GLOBAL.search(text)
    if found:
        return f"it holds a pickled object ({found.group(1)}) that could run code; not loaded"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


__all__ = ["load_error_summary"]
