"""The app's upload handling and offline analysis: size limit, content sniffing, name
sanitising, the private temporary folder, and no network during a check or a locate.

The page tests drive the Check and Locate pages with ``streamlit.testing.v1.AppTest`` (as
``tests/forensics_app/test_app_pages.py`` does); refusals happen before any model loads, so
they are fast.
"""

from __future__ import annotations

import io
import json
import socket
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from repo_paths import REPO
from streamlit.testing.v1 import AppTest

from geoforensics.core.errors import InputError
from geoforensics.core.paths import assets_dir
from geoforensics.forensics_app import common

APP = REPO / "forensics_app" / "app.py"
GALLERY = "grid-10deg"
TIMEOUT = 180
DEMO_CLIP = assets_dir() / "demo" / "demo_clip.mp4"
DEMO_AUDIO = assets_dir() / "demo" / "demo_soundscape.ogg"
HTML = b"<!DOCTYPE html>\n<html><body><script>alert(1)</script></body></html>\n"


class FakeUpload:
    """What the pages read from a Streamlit ``UploadedFile``: name, size, getvalue()."""

    def __init__(self, name: str, data: bytes, size: int | None = None) -> None:
        self.name = name
        self.data = data
        self.size = len(data) if size is None else size
        self.read = False

    def getvalue(self) -> bytes:
        self.read = True
        return self.data


def _wav_bytes(seconds: float = 1.0, rate: int = 22_050, fmt: str = "WAV") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32), rate, format=fmt)
    return buffer.getvalue()


def _image_bytes(fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("clip.mp4", b"not a clip")
    return buffer.getvalue()


@pytest.fixture
def made_folders(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every folder ``tempfile.mkdtemp`` makes during the test (the uploads' private folders)."""
    made: list[Path] = []
    real = tempfile.mkdtemp

    def recording(*args: Any, **kwargs: Any) -> str:
        folder = real(*args, **kwargs)
        made.append(Path(folder))
        return folder

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    return made


# ------------------------------------------------------------------------- size limit


def test_an_upload_over_the_limit_is_refused_before_its_bytes_are_read(
    made_folders: list[Path],
) -> None:
    big = FakeUpload("huge.mp4", b"", size=501 * 1024 * 1024)
    with pytest.raises(InputError, match=r"huge.mp4: 525 MB is over the app's 500 MB upload limit"):
        with common.private_copies([big], expect="media"):
            pytest.fail("the body must not run")
    assert not big.read  # refused from the declared size, the bytes were never fetched
    (folder,) = made_folders
    assert not folder.exists()
    # the bytes are checked too (an upload object without a trustworthy size)
    lying = FakeUpload("small.wav", _wav_bytes(), size=10)
    with pytest.raises(InputError, match="over the app's 0 MB upload limit"):
        common.check_upload_size(len(lying.getvalue()), lying.name, limit_mb=0)


def test_check_page_refuses_an_upload_over_the_limit(
    monkeypatch: pytest.MonkeyPatch, made_folders: list[Path]
) -> None:
    monkeypatch.setenv("GEOFORENSICS_APP_GALLERY", GALLERY)
    monkeypatch.setattr(common, "MAX_UPLOAD_MB", 1)  # read at call time
    at = _check_page()
    data = DEMO_CLIP.read_bytes() * 4  # ~1.2 MB of valid MP4 bytes at the start
    at.get("file_uploader")[0].upload("long.mp4", data, "video/mp4")
    next(b for b in at.button if b.key == "check_run").click().run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert any("long.mp4" in e and "over the app's 1 MB upload limit" in e for e in errors), errors
    assert "check_result" not in at.session_state
    assert made_folders and not any(folder.exists() for folder in made_folders)


# ---------------------------------------------------------------------- content sniffing


def test_formats_are_told_from_the_bytes() -> None:
    cases = {
        "mp4": DEMO_CLIP.read_bytes()[:256],
        "ogg": DEMO_AUDIO.read_bytes()[:256],
        "wav": _wav_bytes(),
        "flac": _wav_bytes(fmt="FLAC"),
        "png": _image_bytes("PNG"),
        "jpeg": _image_bytes("JPEG"),
        "webp": _image_bytes("WEBP"),
        "bmp": _image_bytes("BMP"),
    }
    for expected, data in cases.items():
        assert common.sniff_format(data[: common.SNIFF_BYTES]) == expected
    for not_media in (HTML, _zip_bytes(), b"just some text\n", b"", b"\x00" * 300):
        assert common.sniff_format(not_media[: common.SNIFF_BYTES]) is None


@pytest.mark.parametrize(
    ("data", "name", "expect", "seen"),
    [
        (HTML, "clip.mp4", "media", "HTML/XML text"),
        (_zip_bytes(), "clip.mp4", "media", "a ZIP archive"),
        (b"latitude,longitude\n1,2\n", "clip.wav", "audio", "plain text"),
        (bytes(range(256)) * 4, "clip.mkv", "media", "an unknown format"),
        (DEMO_CLIP.read_bytes(), "photo.png", "image", "mp4"),
        (_image_bytes("PNG"), "song.mp3", "audio", "png"),
    ],
)
def test_uploads_whose_content_is_not_what_the_page_takes_are_refused(
    data: bytes, name: str, expect: str, seen: str, made_folders: list[Path]
) -> None:
    with pytest.raises(InputError) as error:
        with common.private_copies([FakeUpload(name, data)], expect=expect):
            pytest.fail("the body must not run")
    message = str(error.value)
    assert (
        message.startswith(f"{name}: the file's content is {seen}, not ") and "refused" in message
    )
    assert "\n" not in message
    (folder,) = made_folders
    assert not folder.exists()


def test_content_wins_over_the_extension(made_folders: list[Path]) -> None:
    uploads = [
        FakeUpload("actually-a-video.wav", DEMO_CLIP.read_bytes()),
        FakeUpload("no-extension", _wav_bytes(fmt="FLAC")),
    ]
    with common.private_copies(uploads, expect="audio") as paths:
        assert [common.sniff_media_kind(p) for p in paths] == ["media", "media"]
        assert paths[0].read_bytes() == DEMO_CLIP.read_bytes()
    with common.private_copies([FakeUpload("picture.jpg", _image_bytes("PNG"))], expect="image"):
        pass
    assert len(made_folders) == 2 and not any(f.exists() for f in made_folders)


def test_check_page_refuses_html_named_mp4_and_locate_takes_an_mp4_named_wav(
    monkeypatch: pytest.MonkeyPatch, made_folders: list[Path]
) -> None:
    monkeypatch.setenv("GEOFORENSICS_APP_GALLERY", GALLERY)
    at = _check_page()
    at.get("file_uploader")[0].upload("clip.mp4", HTML, "video/mp4")
    next(b for b in at.button if b.key == "check_run").click().run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert any("clip.mp4: the file's content is HTML/XML text" in e for e in errors), errors
    assert "check_result" not in at.session_state

    at.switch_page("locate_page.py").run()
    at.radio(key="locate_audio_source").set_value("Upload audio").run()
    at.get("file_uploader")[0].upload("birds.wav", DEMO_CLIP.read_bytes(), "audio/wav")
    next(b for b in at.button if b.key == "locate_audio_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    location, modality, title = at.session_state["locate_result"]
    assert modality == "audio" and title.startswith("AG-CLIP: birds.wav")
    assert "SYNTHETIC" in title  # the demo model does not speak for an upload unlabelled
    assert len(location.top) == 5 and len(location.probs) == 648
    assert len(made_folders) == 2 and not any(f.exists() for f in made_folders)


def _check_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.radio(key="check_source").set_value("Upload a clip").run()
    return at


# ------------------------------------------------------------------- names and folders


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..\\x.mp4",
        "/etc/cron.d/evil.mp4",
        "C:\\Windows\\System32\\evil.mp4",
        "clip\x00.mp4",
        "line\nbreak\r.mp4",
        "x" * 5000 + ".mp4",
        "..",
        "",
        "~/.bashrc",
        "name with spaces & ünïcode $(rm -rf).mp4",
    ],
)
def test_upload_names_stay_inside_the_private_folder(
    name: str, made_folders: list[Path], tmp_path: Path
) -> None:
    data = _wav_bytes(0.1)
    with common.private_copies([FakeUpload(name, data)], expect="audio") as (path,):
        (folder,) = made_folders
        assert path.parent == folder and path.resolve().parent == folder.resolve()
        assert list(folder.iterdir()) == [path] and path.read_bytes() == data
        assert (folder.stat().st_mode & 0o777) == 0o700
        stem = path.name[3:]  # "NN-" prefix
        assert stem and len(stem) <= 120 and not stem.startswith(".")
        assert all(c.isalnum() or c in "._-" for c in stem), stem
        if name.endswith(".mp4"):
            assert stem.endswith(".mp4")  # the extension ffmpeg may need is kept
    assert not folder.exists()
    assert common.safe_name("../../etc/passwd") == "passwd"
    shown = common.shown_name(name)
    assert "\n" not in shown and "\x00" not in shown and len(shown) <= 120


def test_the_private_folder_is_removed_after_an_error_in_the_analysis(
    made_folders: list[Path],
) -> None:
    with pytest.raises(RuntimeError, match="analysis failed"):
        with common.private_copies([FakeUpload("a.wav", _wav_bytes(0.1))], expect="audio") as (
            path,
        ):
            assert path.is_file()
            raise RuntimeError("analysis failed")
    (folder,) = made_folders
    assert not folder.exists()


# --------------------------------------------------------------------------- offline


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way out to the network raises (and is recorded): socket connect/connect_ex,
    create_connection, getaddrinfo/gethostbyname. Local AF_UNIX sockets are left alone."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(f"network blocked by the test: {what}")

        return blocked

    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        return refuse("socket.connect")(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", refuse("gethostbyname"))
    yield attempts


def test_check_and_locate_run_without_network(
    no_network: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geoforensics.core import cli
    from geoforensics.core.forensics import CheckOptions, load_check_models, run_check

    with pytest.raises(OSError, match="network blocked"):  # the block is in force
        socket.create_connection(("example.com", 80), timeout=1)
    no_network.clear()
    options = CheckOptions(
        model_dir=assets_dir() / "models" / "demo_agclip",
        gallery=GALLERY,
        claimed="Nairobi",
        species=True,
    )
    report = run_check(DEMO_CLIP, options, models=load_check_models(options))
    assert report.verdict.label == "mismatch"
    audio = report.modalities["audio"]
    assert audio.available and audio.probs is not None and len(audio.probs) == 648
    assert report.species is not None  # BirdNET ran, from the installed package
    model = str(assets_dir() / "models" / "demo_agclip")
    argv = ["locate", str(DEMO_AUDIO), "--method", "fused", "--model", model]
    argv += ["--gallery", GALLERY, "--json"]
    assert cli.main(argv) == 0
    located = json.loads(capsys.readouterr().out)
    assert located["gallery"]["size"] == 648 and len(located["places"]) == 5
    assert located["species"]  # BirdNET's detections x range model fused with AG-CLIP
    assert no_network == []  # nothing even tried
