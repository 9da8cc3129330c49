"""The distribution maps the fixed top-level folders under the ``geoforensics`` namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_FOLDERS = ("core", "train", "eval", "forensics_app", "assets")


def _declared_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(config["tool"]["setuptools"]["packages"])


def _packages_on_disk() -> set[str]:
    found = set()
    for folder in TOP_FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO).parts
            if "__pycache__" in relative:
                continue
            found.add("geoforensics." + ".".join(relative))
    return found


def test_every_package_folder_is_declared() -> None:
    assert set(_declared_packages()) == _packages_on_disk()


def test_no_generic_top_level_names_installed(tmp_path: Path) -> None:
    """Outside the checkout, `core`, `eval`, `train` are not importable; our namespace is."""
    probe = (
        "import importlib.util as u;"
        "names = ('core', 'eval', 'train', 'forensics_app', 'assets');"
        "print([n for n in names if u.find_spec(n)]);"
        "import geoforensics.core.cli as c; print(c.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "geoforensics.core.cli"]


def test_regular_wheel_installs_and_imports(tmp_path: Path) -> None:
    """Build a wheel, install it into a bare folder and import from there (no editable finder)."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = wheel_dir.glob("geoforensics-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "geoforensics/core/cli.py" in names
    assert "geoforensics/assets/outlines/countries.geojson" in names  # the app's offline map
    assert "geoforensics/forensics_app/app.py" in names
    assert not any(name.startswith(("core/", "eval/", "train/")) for name in names)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    probe = (
        "import geoforensics.core.cli, geoforensics.train, geoforensics.eval, "
        "geoforensics.forensics_app, geoforensics.assets as a, pathlib;"
        "print(geoforensics.core.cli.__file__);"
        "print(sorted(p.name for p in pathlib.Path(a.__file__).parent.iterdir()))"
    )
    # -S: no site-packages, so the editable install of this checkout cannot answer the import.
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert "demo" in out[1]
