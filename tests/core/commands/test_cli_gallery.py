"""`geoforensics gallery build|info`: outputs, cached embeddings, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geoforensics.core import cli


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("GEOFORENSICS_CACHE", str(root))
    return root


def test_build_writes_npy_and_sidecar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.npy"
    assert cli.main(["gallery", "build", "grid-10deg", "--out", str(out)]) == 0
    coords = np.load(out, allow_pickle=False)
    assert coords.shape == (18 * 36, 2)
    assert out.with_suffix(".json").is_file()
    assert "grid-10deg: 648 locations" in capsys.readouterr().out


def test_build_with_embed_caches_and_reuses(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "sites.csv"
    points.write_text("latitude,longitude\n48.85,2.35\n-33.87,151.21\n35.68,139.69\n")
    out = tmp_path / "sites.npy"
    argv = ["gallery", "build", f"file:{points}", "--out", str(out), "--embed", "--no-progress"]
    assert cli.main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("embeddings"))
    assert line.startswith("embeddings 3x512 -> ")
    cached = Path(line.split(" -> ")[1].rsplit(" (", 1)[0])
    assert cached.parent == cache / "gallery_embeddings"
    emb = np.load(cached)
    assert emb.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    mtime = cached.stat().st_mtime_ns
    assert cli.main(argv) == 0
    assert str(cached) in capsys.readouterr().out
    assert cached.stat().st_mtime_ns == mtime  # second run read the cache, wrote nothing


def test_info_on_file_and_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.npy"
    assert cli.main(["gallery", "build", "grid-30deg", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["gallery", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "name:      grid-30deg" in text
    assert "count:     72" in text
    assert "latitude:  -75.0000 .. 75.0000" in text
    assert "longitude: -165.0000 .. 165.0000" in text
    assert cli.main(["gallery", "info", "geoclip-100k"]) == 0
    assert "count:     100000" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gallery", "info", "grid-7deg"], "grid step 7.0: must divide 180 degrees evenly"),
        (["gallery", "info", "atlantis"], "unknown gallery 'atlantis'"),
        (["gallery", "build", "grid-10deg", "--out", "{tmp}/g.txt"], "g.txt: a gallery is saved"),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("geoforensics: error: ") and message in err
    assert err.count("\n") == 1


def test_bad_csv_error_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon\n10,20\n10,200\n")
    assert cli.main(["gallery", "build", f"file:{bad}", "--out", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: line 3: lat=10.0, lon=200.0 out of range" in err
    assert not (tmp_path / "x.npy").exists()


def test_gallery_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gallery"]) == 2
    assert "build" in capsys.readouterr().out
