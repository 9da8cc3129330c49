"""Lazy package exports: names a package lists are imported from its submodules on first use.

Packages whose submodules pull in heavy libraries (transformers, streamlit helpers, torch
models) export their public names through :func:`lazy_exports`, so ``import`` of the
package stays cheap and the CLI starts fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package`` (its ``__name__``), where
    ``exports`` maps each public name to the submodule that defines it. A name is imported
    once and then kept in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
