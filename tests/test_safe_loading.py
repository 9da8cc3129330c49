"""Safe loading: no loader unpickles code, a malicious checkpoint is refused by every loader a
user reaches, and cached gallery embeddings follow their inputs.

Already tested elsewhere (not repeated here):
- a corrupted gallery-embedding cache entry is rebuilt, and the key changes with the
  coordinates and with in-memory weights: ``tests/core/geoclip/test_retrieval.py``
  (``test_cache_rebuilds_a_corrupted_entry``, ``test_cache_key_changes_with_coords_and_weights``);
- a range table cache is hit, rebuilt when its file is damaged, truncated or its side file
  unreadable, and keyed by week, points and model identity:
  ``tests/core/species/test_species_ranges.py``
  (``test_range_table_cache_hit_and_damaged_file_rebuilt``, ``test_model_identity_...``);
- bench results and saved location encoders are verified by checksum:
  ``tests/eval/test_eval_bench.py``, ``tests/core/models/test_location_encoders.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from geoforensics.core import cli
from geoforensics.core.errors import GeoforensicsError

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("core", "train", "eval", "forensics_app", "assets")


class _Payload:
    """Unpickling this creates the file ``sentinel`` (``open(sentinel, "w")``): the stand-in
    for code a hostile checkpoint would run."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.sentinel), "w"))


def _hostile_checkpoint(path: Path, sentinel: Path, layout: str = "state_dict") -> Path:
    """A torch.save file that looks like a checkpoint and carries the payload."""
    tensors = {"weight": torch.zeros(2, 2)}
    content: dict[str, Any]
    if layout == "sinr":
        content = {"params": {"model": "ResidualFCNet"}, "state_dict": tensors}
    else:
        content = {"state_dict": tensors, "epoch": 0}
    content["hyper_parameters"] = {"note": _Payload(sentinel)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return path


def test_the_hostile_checkpoint_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The control: loading it the unsafe way does create the sentinel (so the tests below,
    where it must not appear, can fail)."""
    sentinel = tmp_path / "ran"
    path = _hostile_checkpoint(tmp_path / "evil.ckpt", sentinel)
    torch.load(path, map_location="cpu", weights_only=False)
    assert sentinel.exists()


def _loaders() -> dict[str, Callable[[Path], Any]]:
    from geoforensics.core.geoclip.location_encoder import load_location_encoder
    from geoforensics.core.models import reference
    from geoforensics.core.models.encoders import create_encoder, load_encoder_weights
    from geoforensics.core.models.location import (
        load_satclip_checkpoint,
        load_sinr_checkpoint,
    )
    from geoforensics.core.species.ranges import SINRRangeModel

    return {
        "load_reference_checkpoint": reference.load_reference_checkpoint,
        "load_encoder_weights": lambda p: load_encoder_weights(create_encoder("test_tiny"), p),
        "load_sinr_checkpoint": load_sinr_checkpoint,
        "SINRRangeModel": SINRRangeModel,
        "load_satclip_checkpoint": load_satclip_checkpoint,
        "load_location_encoder (GeoCLIP)": load_location_encoder,
    }


@pytest.mark.parametrize("loader", list(_loaders()))
@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".pt"])
def test_loaders_refuse_a_hostile_checkpoint_without_running_it(
    loader: str, suffix: str, tmp_path: Path
) -> None:
    sentinel = tmp_path / "ran"
    layout = "sinr" if "SINR" in loader or "sinr" in loader else "state_dict"
    path = _hostile_checkpoint(tmp_path / f"weights{suffix}", sentinel, layout)
    with pytest.raises(GeoforensicsError) as error:
        _loaders()[loader](path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message, message
    assert "weights_only=True" in message and "pickled object (io.open)" in message, message
    assert "\x1b" not in message  # no terminal colour codes from torch's message
    assert not sentinel.exists()


def test_resume_refuses_a_hostile_last_checkpoint(
    train_micro_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"method: agclip\ndata:\n  root: {train_micro_world}\nmodel:\n  encoder: test_tiny\n",
        encoding="utf-8",
    )
    out, sentinel = tmp_path / "run", tmp_path / "ran"
    last = _hostile_checkpoint(out / "checkpoints" / "last.ckpt", sentinel)
    assert cli.main(["train", str(config), "--out", str(out), "--resume", "--no-progress"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"geoforensics: error: {last}: cannot resume: not a checkpoint")
    assert "weights_only=True" in line
    assert not sentinel.exists()
    # a truncated last.ckpt (a kill mid-write under a non-atomic writer) is refused the same way
    last.write_bytes(last.read_bytes()[:100])
    assert cli.main(["train", str(config), "--out", str(out), "--resume", "--no-progress"]) == 1
    assert "cannot resume" in capsys.readouterr().err


# --------------------------------------------------------------------------- audit


def _call_name(node: ast.Call) -> str:
    parts: list[str] = []
    target: ast.expr = node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if isinstance(target, ast.Name):
        parts.append(target.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_true(value: ast.expr | None) -> bool:
    return isinstance(value, ast.Constant) and value.value is True


def unsafe_loads(source: str, filename: str) -> list[str]:
    """Calls and imports in ``source`` that could unpickle code, as ``file:line: reason``."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules.append(node.module or "")
            for module in modules:
                if module.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle"):
                    found.append(f"{where}: imports {module}")
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        last = name.rsplit(".", 1)[-1]
        if name in ("torch.load", "torch.serialization.load") and not _is_true(
            _keyword(node, "weights_only")
        ):
            found.append(f"{where}: {name} without weights_only=True")
        elif last in ("load", "loads") and name.split(".")[0] in ("pickle", "dill", "joblib"):
            found.append(f"{where}: {name}")
        elif (
            last == "load"
            and name.split(".")[0] in ("np", "numpy")
            and not _is_false_or_absent(_keyword(node, "allow_pickle"))
        ):
            found.append(f"{where}: {name} with allow_pickle")
        elif last == "read_pickle" or last == "load_from_checkpoint":
            found.append(f"{where}: {name}")
        elif (
            last in ("fit", "validate", "test", "predict")
            and _keyword(node, "ckpt_path") is not None
            and not _is_true(_keyword(node, "weights_only"))
        ):
            found.append(f"{where}: {name}(ckpt_path=...) without weights_only=True")
    return found


def _is_false_or_absent(value: ast.expr | None) -> bool:
    return value is None or (isinstance(value, ast.Constant) and value.value is False)


def test_no_loader_in_the_package_can_unpickle_code() -> None:
    offenders = []
    files = sorted(p for folder in PACKAGE_FOLDERS for p in (REPO / folder).rglob("*.py"))
    assert len(files) > 100
    for path in files:
        offenders += unsafe_loads(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert offenders == [], "loads that could unpickle code:\n" + "\n".join(offenders)


def test_the_audit_catches_each_unsafe_pattern() -> None:
    unsafe = {
        "torch.load(f)": "without weights_only=True",
        "torch.load(f, weights_only=False)": "without weights_only=True",
        "import pickle": "imports pickle",
        "from joblib import load": "imports joblib",
        "pickle.loads(b)": "pickle.loads",
        "np.load(f, allow_pickle=True)": "allow_pickle",
        "pd.read_pickle(f)": "read_pickle",
        "Task.load_from_checkpoint(f)": "load_from_checkpoint",
        "trainer.fit(task, ckpt_path=p)": "ckpt_path",
    }
    for code, reason in unsafe.items():
        (problem,) = unsafe_loads(code, "x.py")
        assert reason in problem, (code, problem)
    safe = (
        "torch.load(f, map_location='cpu', weights_only=True)\n"
        "np.load(f)\nnp.load(f, allow_pickle=False)\n"
        "trainer.fit(task, ckpt_path=p, weights_only=True)\n"
    )
    assert unsafe_loads(safe, "x.py") == []


# ------------------------------------------------------------------- cache identity


def test_gallery_embeddings_follow_the_weights_file(tmp_path: Path) -> None:
    """Another weights file (same shapes, one value changed) is another cache entry: the
    embeddings are computed again with it, never served from the first file's entry."""
    from geoforensics.core.geoclip import LOCATION_ENCODER_WEIGHTS, geoclip_file
    from geoforensics.core.geoclip.embeddings import (
        cached_gallery_embeddings,
        embeddings_cache_path,
    )
    from geoforensics.core.geoclip.location_encoder import load_location_encoder

    coords = np.array([[0.0, 0.0], [45.0, 90.0], [-30.0, -60.0]])
    original = load_location_encoder()
    first = cached_gallery_embeddings(coords, encoder=original, progress=False)
    state = torch.load(
        geoclip_file(LOCATION_ENCODER_WEIGHTS), map_location="cpu", weights_only=True
    )
    key = next(k for k, v in state.items() if k.endswith("bias") and v.ndim == 1)
    state[key] = state[key] + 0.5
    changed_file = tmp_path / "location_encoder_weights.pth"
    torch.save(state, changed_file)
    changed = load_location_encoder(changed_file)
    assert embeddings_cache_path(coords, changed) != embeddings_cache_path(coords, original)
    second = cached_gallery_embeddings(coords, encoder=changed, progress=False)
    assert embeddings_cache_path(coords, changed).is_file()
    assert not np.allclose(first, second)
    # the same bytes under another name are the same entry (the key is the content hash)
    twin = tmp_path / "twin.pth"
    twin.write_bytes(changed_file.read_bytes())
    assert embeddings_cache_path(coords, load_location_encoder(twin)) == embeddings_cache_path(
        coords, changed
    )
