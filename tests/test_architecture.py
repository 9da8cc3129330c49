"""Which way imports may point (README, "Architecture"): the core library never imports the
CLI commands, the bench (``eval``), training (``train``) or the app (``forensics_app``).

Every ``.py`` under ``core/`` is parsed (no import runs), and every import statement counts,
function-local ones included, absolute or relative, as do ``importlib.import_module`` calls
with a literal name. A failure names ``file:line`` and the module imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "core"

#: The layers above the core library, as imported.
UPPER = (
    "geoforensics.eval",
    "geoforensics.train",
    "geoforensics.forensics_app",
    "geoforensics.core.commands",
)
#: train/ and the app: no core module imports them, except a CLI command that launches them.
TRAIN_OR_APP = ("geoforensics.train", "geoforensics.forensics_app")
#: The commands that start training or the app (``geoforensics train``, ``pool``, ``app``),
#: each with the upper package it starts. Exact: an entry no longer needed fails too.
LAUNCHERS: dict[str, str] = {
    "core/commands/app.py": "geoforensics.forensics_app",
    "core/commands/pooling.py": "geoforensics.train",
    "core/commands/train.py": "geoforensics.train",
}


def _module_parts(path: Path) -> list[str]:
    """``core/geo/worldmap.py`` -> ``["geoforensics", "core", "geo", "worldmap"]``."""
    parts = ["geoforensics", *path.relative_to(REPO).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_names(source: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything ``source`` (the file at ``path``) imports: modules,
    and ``module.name`` for each name taken from a module (it may be a submodule)."""
    package = _module_parts(path)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            yield node.lineno, node.args[0].value


def _under(name: str, packages: tuple[str, ...]) -> str | None:
    """The package of ``packages`` that ``name`` is or lies under, else None."""
    return next((p for p in packages if name == p or name.startswith(p + ".")), None)


def _core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 50, f"only {len(files)} files under {CORE}"
    return files


def _is_command_layer(path: Path) -> bool:
    rel = path.relative_to(CORE)
    return rel.parts[0] == "commands" or rel.as_posix() == "cli.py"


def violations(packages: tuple[str, ...], skip_commands: bool) -> dict[str, set[str]]:
    """``file:line`` -> the upper packages imported there, over every file under core/."""
    found: dict[str, set[str]] = {}
    for path in _core_files():
        if skip_commands and _is_command_layer(path):
            continue
        rel = path.relative_to(REPO).as_posix()
        for line, name in imported_names(path.read_text(encoding="utf-8"), path):
            upper = _under(name, packages)
            if upper is not None:
                found.setdefault(f"{rel}:{line}", set()).add(upper)
    return found


def test_the_core_library_imports_no_upper_layer() -> None:
    found = violations(UPPER, skip_commands=True)
    assert not found, "core imports an upper layer (move the code down into core):\n" + "\n".join(
        f"  {where}: {', '.join(sorted(names))}" for where, names in sorted(found.items())
    )


def test_no_core_module_imports_train_or_the_app_but_their_launchers() -> None:
    found = violations(TRAIN_OR_APP, skip_commands=False)
    by_file: dict[str, set[str]] = {}
    for where, names in found.items():
        by_file.setdefault(where.rpartition(":")[0], set()).update(names)
    wrong = sorted(
        f"  {where}: {', '.join(sorted(names))}"
        for where, names in found.items()
        if names != {LAUNCHERS.get(where.rpartition(":")[0])}
    )
    assert not wrong, "core imports train/ or the app:\n" + "\n".join(wrong)
    stale = sorted(set(LAUNCHERS) - set(by_file))
    assert not stale, f"LAUNCHERS entries that import nothing upper any more: {stale}"


@pytest.mark.parametrize(
    ("file", "source", "expected"),
    [
        ("core/geo/x.py", "def f():\n    from ...eval import plots\n", "geoforensics.eval"),
        ("core/geo/x.py", "from ..commands.locate import Place\n", "geoforensics.core.commands"),
        ("core/geo/__init__.py", "from ..commands import locate\n", "geoforensics.core.commands"),
        ("core/x.py", "from .commands import locate\n", "geoforensics.core.commands"),
        ("core/x.py", "from .. import train\n", "geoforensics.train"),
        ("core/x.py", "import geoforensics.forensics_app.maps\n", "geoforensics.forensics_app"),
        ("core/x.py", "from geoforensics import eval as e\n", "geoforensics.eval"),
        ("core/x.py", "import_module('geoforensics.train.runner')\n", "geoforensics.train"),
        ("core/x.py", "from .geo import worldmap\nimport geoforensics.evaluate\n", None),
    ],
)
def test_the_checker_sees_every_import_form(file: str, source: str, expected: str | None) -> None:
    names = [name for _, name in imported_names(source, REPO / file)]
    assert {_under(n, UPPER) for n in names} - {None} == ({expected} if expected else set())


# ----------------------------------------------------------------- layers inside core/

#: The core library's layers, bottom-up (README, "Architecture"): a module may import its own
#: layer and the ones before it, never a later one. Entries are folders or files under core/.
CORE_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        ("__init__.py", "errors.py", "fileio.py", "paths.py", "lazy_exports.py", "load_errors.py"),
    ),
    ("media", ("media", "audio")),
    ("geo", ("geo", "geoclip")),
    ("data", ("data", "synth")),
    ("models and evidence", ("models", "species", "vision", "multimodal.py")),
    ("check and report", ("forensics", "demo.py")),
    ("command line", ("commands", "cli.py", "__main__.py")),
)
#: Lower-layer imports of a later layer's module that the design allows, with the reason.
LAYER_EXCEPTIONS: dict[str, str] = {
    # the range-model protocol (RangeModel, week rows) the synthetic world implements
    "geoforensics.core.species.checklists": "data",
}


def core_layer(module_or_path: str) -> int | None:
    """Index in :data:`CORE_LAYERS` of a core module (dotted) or a path relative to core/."""
    if module_or_path.startswith("geoforensics."):
        parts = module_or_path.split(".")
        if parts[:2] != ["geoforensics", "core"]:
            return None
        rel = "/".join(parts[2:])
        candidates = [f"{rel}.py", f"{rel}/__init__.py"] if rel else ["__init__.py"]
    else:
        candidates = [module_or_path]
    for candidate in candidates:
        for index, (_, entries) in enumerate(CORE_LAYERS):
            for entry in entries:
                if candidate == entry or candidate.startswith(entry.removesuffix(".py") + "/"):
                    return index
    return None


def layer_violations() -> list[str]:
    """``file:line module (layer -> later layer)`` for every import pointing up the layers."""
    found = []
    for path in _core_files():
        rel = path.relative_to(CORE).as_posix()
        own = core_layer(rel)
        assert own is not None, f"core/{rel} is in no layer of CORE_LAYERS"
        for line, name in imported_names(path.read_text(encoding="utf-8"), path):
            target = core_layer(name)
            if target is None or target <= own:
                continue
            allowed = next(
                (layer for key, layer in LAYER_EXCEPTIONS.items() if _under(name, (key,))), None
            )
            if allowed is not None and core_layer(f"geoforensics.core.{allowed}") == own:
                continue
            found.append(
                f"core/{rel}:{line} {name} ({CORE_LAYERS[own][0]} -> {CORE_LAYERS[target][0]})"
            )
    return found


def test_core_imports_follow_the_layers() -> None:
    found = layer_violations()
    assert not found, "an import points to a later layer (move the code down):\n" + "\n".join(
        f"  {line}" for line in found
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("geoforensics.core.errors", "foundation"),
        ("geoforensics.core.geo.ranking", "geo"),
        ("geoforensics.core.species.likelihood", "models and evidence"),
        ("geoforensics.core.forensics", "check and report"),
        ("geoforensics.core.commands.locate", "command line"),
        ("multimodal.py", "models and evidence"),
        ("geoforensics.eval.bench", None),
    ],
)
def test_every_core_module_has_a_layer(name: str, expected: str | None) -> None:
    index = core_layer(name)
    assert (None if index is None else CORE_LAYERS[index][0]) == expected


# ------------------------------------------------------------------------------ cycles

FOLDERS = ("core", "train", "eval", "forensics_app")


def _runtime_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Like :func:`imported_names`, without the imports under ``if TYPE_CHECKING:`` (they
    never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                typing_only.update(id(n) for n in ast.walk(child))
    kept = [n for n in ast.walk(tree) if id(n) not in typing_only]
    module = ast.Module(body=[n for n in kept if isinstance(n, (ast.Import, ast.ImportFrom))])
    module.type_ignores = []
    yield from imported_names(ast.unparse(module), path)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time (function-local included)."""
    paths = {
        ".".join(_module_parts(p)): p
        for folder in FOLDERS
        for p in sorted((REPO / folder).rglob("*.py"))
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for _, imported in _runtime_imports(path):
            while imported and imported not in paths:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "modules that import each other:\n" + "\n".join(
        f"  {' <-> '.join(group)}" for group in cycles
    )


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
