"""Media containers: probe (hash, streams, tags, GPS, time), keyframes, audio track, writer."""

from __future__ import annotations

import hashlib
import json
import runpy
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from repo_paths import TESTS

from geoforensics.core.audio.decode import decode_report
from geoforensics.core.errors import InputError, MediaDecodeError
from geoforensics.core.media import (
    Keyframe,
    creation_time_from_tags,
    extract_keyframes,
    format_iso6709,
    gps_from_tags,
    load_media_audio,
    make_test_video,
    parse_creation_time,
    parse_ffmpeg_info,
    parse_iso6709,
    probe_media,
)
from geoforensics.core.media.keyframes import _BinnedPool, _spread

DATA = TESTS / "data" / "media"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def script() -> dict[str, Any]:
    """The committed data script's namespace (run_path: no bytecode lands in the repo)."""
    return runpy.run_path(str(DATA / "data.py"), run_name="fake_media_data")


@pytest.fixture(scope="module")
def media(script: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return script["write_media"](tmp_path_factory.mktemp("media"))


def _colour_error(image: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float(np.abs(image.reshape(-1, 3).mean(axis=0) - np.array(colour)).max())


# --------------------------------------------------------------------------------------------
# writer + probe round trip


def test_make_test_video_round_trip(media: dict[str, Path], script: dict[str, Any]) -> None:
    clip = media["clip"]
    info = probe_media(clip)
    assert info.path == clip
    assert info.sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert info.size_bytes == clip.stat().st_size
    assert "mp4" in info.container.split(",")
    assert info.duration_s == pytest.approx(script["CLIP_SECONDS"], abs=0.05)
    assert info.has_video and info.has_audio
    assert (info.height, info.width) == script["CLIP_SIZE"]
    assert info.fps == pytest.approx(script["CLIP_FPS"])
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.audio_sample_rate, info.audio_channels) == (script["SAMPLE_RATE"], 1)
    assert info.gps is not None
    assert info.gps == pytest.approx(script["GPS"], abs=1e-4)
    assert info.creation_time == script["CREATION_TIME"]
    assert info.creation_time is not None and info.creation_time.utcoffset() == timedelta(0)
    assert info.tags["title"] == script["TAGS"]["title"]
    assert info.tags["comment"] == script["TAGS"]["comment"]
    assert "handler_name" not in info.tags  # per-stream technical keys stay out
    assert info.rotation_deg == 0.0
    as_json = json.loads(json.dumps(info.as_dict()))
    assert as_json["gps"] == pytest.approx(list(script["GPS"]), abs=1e-4)
    assert as_json["creation_time"] == "2023-10-14T06:30:15+00:00"
    assert [s["kind"] for s in as_json["streams"]] == ["video", "audio"]


def test_silent_video_is_padded_to_even_size_and_has_no_audio(media: dict[str, Path]) -> None:
    info = probe_media(media["silent"])
    assert (info.width, info.height) == (64, 48)  # 63x47 pictures, padded for 4:2:0
    assert info.has_video and not info.has_audio
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert info.gps is None and info.creation_time is None
    with pytest.raises(MediaDecodeError, match="has no audio track") as caught:
        load_media_audio(media["silent"])
    assert str(media["silent"]) in str(caught.value) and "\n" not in str(caught.value)


def test_writer_is_deterministic(tmp_path: Path) -> None:
    frames = [np.full((32, 48, 3), value, dtype=np.uint8) for value in (10, 200)]
    audio = np.sin(np.arange(8000) / 7.0).astype(np.float32) * 0.3
    first = make_test_video(tmp_path / "a.mp4", audio=audio, sample_rate=8000, frames=frames)
    second = make_test_video(tmp_path / "b.mp4", audio=audio, sample_rate=8000, frames=frames)
    assert probe_media(first).sha256 == probe_media(second).sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]  # no temp files


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": [], "audio": None}, "nothing to write"),
        ({"frames": [np.zeros((8, 8, 3), np.float32)]}, "uint8"),
        ({"frames": [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]}, "one size"),
        ({"gps": (91.0, 0.0)}, "gps"),
        ({"fps": 0.0}, "fps"),
        ({"tags": {"bad key": "x"}}, "metadata key"),
        ({"audio": np.array([0.0, np.nan], np.float32)}, "NaN"),
    ],
)
def test_make_test_video_rejects_bad_input(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "audio": None,
        "sample_rate": 8000,
        "frames": [np.zeros((8, 8, 3), np.uint8)],
    }
    arguments.update(kwargs)
    out = tmp_path / "bad.mp4"
    with pytest.raises(InputError, match=message):
        make_test_video(out, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_audio_only_files(media: dict[str, Path], script: dict[str, Any]) -> None:
    ogg = probe_media(media["ogg"])
    assert (ogg.container, ogg.audio_codec, ogg.audio_channels) == ("ogg", "vorbis", 1)
    assert ogg.duration_s == pytest.approx(2.0, abs=0.05)
    assert ogg.tags["title"] == script["OGG_TITLE"]  # a Vorbis comment, kept on the stream
    assert not ogg.has_video and ogg.width is None and ogg.fps is None

    wav = probe_media(media["wav"])
    assert (wav.container, wav.audio_codec) == ("wav", "pcm_s16le")
    assert (wav.audio_sample_rate, wav.audio_channels) == (script["SAMPLE_RATE"], 2)
    assert wav.duration_s == pytest.approx(2.0, abs=0.01)

    m4a = probe_media(media["audio_only"])
    assert m4a.has_audio and not m4a.has_video and m4a.audio_codec == "aac"

    for name in ("ogg", "wav", "audio_only"):
        with pytest.raises(MediaDecodeError, match="has no video stream") as caught:
            extract_keyframes(media[name])
        assert str(media[name]) in str(caught.value)

    samples = load_media_audio(media["wav"], sample_rate=11025)
    assert samples.dtype == np.float32 and samples.shape == (22050,)


# --------------------------------------------------------------------------------------------
# audio track


def test_load_media_audio_returns_what_was_written(
    media: dict[str, Path], script: dict[str, Any]
) -> None:
    expected = script["clip_audio"]()
    decoded = load_media_audio(media["clip"])
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size - expected.size) <= 1024  # within one AAC frame
    n = min(decoded.size, expected.size)
    assert np.corrcoef(decoded[:n], expected[:n])[0, 1] > 0.9
    resampled = load_media_audio(media["clip"], sample_rate=16000)
    assert abs(resampled.size - 8.0 * 16000) <= 1024


# --------------------------------------------------------------------------------------------
# keyframes


def test_keyframes_find_scene_changes(media: dict[str, Path], script: dict[str, Any]) -> None:
    frames = extract_keyframes(media["clip"])
    assert [f.time_s for f in frames] == pytest.approx([0.0, 3.0, 6.0], abs=1e-3)
    assert [f.reason for f in frames] == ["first", "scene", "scene"]
    assert all(f.scene_score > 0.3 for f in frames[1:])
    for frame in frames:
        assert isinstance(frame, Keyframe)
        assert frame.image.shape == (*script["CLIP_SIZE"], 3)
        assert frame.image.dtype == np.uint8
        assert _colour_error(frame.image, script["scene_colour"](frame.time_s)) < 8


def test_keyframes_interval_fallback(media: dict[str, Path]) -> None:
    frames = extract_keyframes(media["clip"], every_s=2.5)
    assert [f.time_s for f in frames] == pytest.approx([0.0, 2.5, 3.0, 5.5, 6.0], abs=1e-3)
    assert [f.reason for f in frames] == ["first", "interval", "scene", "interval", "scene"]

    plain = extract_keyframes(media["clip"], every_s=2.0, scene_threshold=None)
    assert [f.time_s for f in plain] == pytest.approx([0.0, 2.0, 4.0, 6.0], abs=1e-3)
    assert [f.reason for f in plain] == ["first", "interval", "interval", "interval"]


def test_keyframes_cap_keeps_scene_changes_spread_over_the_clip(media: dict[str, Path]) -> None:
    # every frame is a candidate (every_s = one frame); the cap keeps one per third of the clip
    frames = extract_keyframes(media["clip"], every_s=0.5, max_frames=3)
    assert [f.time_s for f in frames] == pytest.approx([0.0, 3.0, 6.0], abs=1e-3)
    assert [f.reason for f in frames] == ["first", "scene", "scene"]
    capped = extract_keyframes(media["clip"], every_s=0.5, max_frames=5)
    assert len(capped) == 5
    assert capped[0].time_s == 0.0
    assert [f.time_s for f in capped] == sorted(f.time_s for f in capped)
    assert {3.0, 6.0} <= {round(f.time_s, 3) for f in capped}
    only = extract_keyframes(media["clip"], max_frames=1)
    assert [(f.time_s, f.reason) for f in only] == [(0.0, "first")]


def test_keyframes_are_scaled_to_max_side(media: dict[str, Path]) -> None:
    frames = extract_keyframes(media["clip"], max_side=48)
    assert {f.image.shape for f in frames} == {(32, 48, 3)}
    small = extract_keyframes(media["silent"], max_side=640)  # never upscaled
    assert [f.image.shape for f in small] == [(48, 64, 3)]


def test_rotated_video_frames_come_out_upright(media: dict[str, Path], tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "error",
            "-display_rotation",
            "90",
            "-i",
            str(media["silent"]),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
        capture_output=True,
    )
    info = probe_media(rotated)
    assert (info.width, info.height, info.rotation_deg) == (64, 48, 90.0)
    assert extract_keyframes(rotated)[0].image.shape == (64, 48, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_s": 0.0}, "every_s"),
        ({"max_frames": 0}, "max_frames"),
        ({"scene_threshold": 1.5}, "scene_threshold"),
        ({"max_side": 2}, "max_side"),
    ],
)
def test_keyframes_reject_bad_arguments(
    media: dict[str, Path], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        extract_keyframes(media["clip"], **kwargs)


def _candidate(time_s: float, reason: str, score: float = 0.0) -> Keyframe:
    return Keyframe(time_s, np.zeros((2, 2, 3), np.uint8), reason, score)


def test_candidate_pool_is_bounded_and_spread() -> None:
    rng = np.random.default_rng(0)
    pool = _BinnedPool(max_frames=6, duration_s=None, every_s=1.0)
    sizes = []
    pool.offer(_candidate(0.0, "first"))
    for time_s in np.arange(0.5, 1000.0, 0.5):
        scene = rng.random() < 0.3
        pool.offer(_candidate(float(time_s), "scene" if scene else "interval", rng.random()))
        sizes.append(len(pool.bins))
    assert max(sizes) <= 24
    picked = _spread(pool.candidates(), 6, None)
    times = [f.time_s for f in picked]
    assert len(picked) == 6 and times[0] == 0.0 and picked[0].reason == "first"
    assert np.diff(times).max() < 2 * 1000 / 6
    assert times == sorted(times)


def test_spread_prefers_strong_scene_changes_within_a_part() -> None:
    candidates = [
        _candidate(0.0, "first"),
        _candidate(1.0, "interval"),
        _candidate(2.0, "scene", 0.5),
        _candidate(3.0, "scene", 0.9),
        _candidate(7.0, "interval"),
        _candidate(8.0, "interval"),
    ]
    picked = _spread(candidates, 3, 9.0)
    assert [(f.time_s, f.reason) for f in picked] == [
        (0.0, "first"),
        (3.0, "scene"),
        (7.0, "interval"),
    ]


# --------------------------------------------------------------------------------------------
# errors


def test_missing_empty_and_non_media_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.wav"
    text.write_text("these are field notes, not audio\n")
    cases = [
        (tmp_path / "missing.mp4", "not found"),
        (empty, "empty"),
        (noise, "not a decodable"),
        (text, "not a decodable"),
    ]
    for path, message in cases:
        for reader in (probe_media, load_media_audio, extract_keyframes):
            with pytest.raises(MediaDecodeError, match=message) as caught:
                reader(path)
            assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_truncated_file_is_described_and_decodes_what_it_holds(
    media: dict[str, Path], tmp_path: Path
) -> None:
    data = media["clip"].read_bytes()  # 8 s, index in front of the media data
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    info = probe_media(cut)
    assert info.damage is not None and "partial file" in info.damage and "\n" not in info.damage
    assert info.as_dict()["damage"] == info.damage
    assert info.duration_s == pytest.approx(8.0, abs=0.1)  # what the index declares
    assert probe_media(media["clip"]).damage is None
    whole = load_media_audio(media["clip"])
    samples = load_media_audio(cut)
    assert 1.0 < samples.size / 22050 < 7.0
    keep = samples.size - 22050 // 20
    np.testing.assert_allclose(samples[:keep], whole[:keep], atol=1e-6)
    report = decode_report(cut)
    assert report is not None and report.expected_s == pytest.approx(8.0, abs=0.1)
    assert report.message().startswith(f"{cut}: decoding stopped at ")
    frames = extract_keyframes(cut, every_s=1.0)
    assert frames and max(f.time_s for f in frames) < 8.0
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(data[:2000])
    for reader in (probe_media, load_media_audio, extract_keyframes):
        with pytest.raises(MediaDecodeError, match=r"truncated|not a decodable") as caught:
            reader(header_only)
        assert str(caught.value).startswith(str(header_only)) and "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# the pure parser and tag readers, on captured ffmpeg text

MP4_LEVELLED = """\
[info] Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
[info]   Metadata:
[info]     major_brand     : isom
[info]     compatible_brands: isomiso2avc1mp41
[info]     creation_time   : 2024-05-06T07:08:09.000000Z
[info]     title           : My clip
[info]     description     : multi
[info]                     : line: with colon
[info]     location-eng    : +42.6354-083.2868/
[info]     location        : +42.6354-083.2868/
[info]   Duration: 00:01:03.25, start: 0.000000, bitrate: 76 kb/s
[info]   Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), \
yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 6 kb/s, 29.97 fps, \
29.97 tbr, 30k tbn (default)
[info]     Metadata:
[info]       creation_time   : 2024-05-06T07:08:09.000000Z
[info]       handler_name    : VideoHandler
[info]     Side data:
[info]       Display Matrix: rotation of -90.00 degrees
[info]   Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), \
fltp, 63 kb/s (default)
[info]     Metadata:
[info]       handler_name    : SoundHandler
[info] Stream mapping:
[info]   Stream #0:0 -> #0:0 (copy)
[info] Output #0, null, to 'pipe:':
[info]   Metadata:
[info]     title           : not the input's
[in#0/mov,mp4,m4a,3gp,3g2,mj2 @ 0x56295c298100] [warning] Packet corrupt (stream = 1).
[in#0/mov,mp4,m4a,3gp,3g2,mj2 @ 0x56295c298100] [error] stream 1, offset 0x4e78: partial file
"""

MKV_PLAIN = """\
Input #0, matroska,webm, from 'c.mkv':
  Metadata:
    title           : Chaptered
    ENCODER         : Lavf63.1.102
  Duration: 00:00:02.02, start: 0.000000, bitrate: 195 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 1.000000
      Metadata:
        title           : Intro
  Stream #0:0: Video: h264 (High), yuv420p(tv, progressive), 64x48 [SAR 1:1 DAR 4:3], \
25 tbr, 1k tbn
    Metadata:
      ENCODER         : Lavc63.1.102 libx264
      DURATION        : 00:00:02.002000000
  Stream #0:1: Audio: aac (LC), 48000 Hz, 5.1, fltp
    Metadata:
      ENCODER         : Lavc63.1.102 aac
      ARTIST          : Somebody
At least one output file must be specified
"""

TS_AND_COVER = """\
Input #0, mpegts, from 'c.ts':
  Duration: N/A, start: 1.456778, bitrate: N/A
  Program 1
    Metadata:
      service_name    : TestTV
  Stream #0:0[0x101]: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 129 kb/s, start 1.456778
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 600x600, \
90k tbr, 90k tbn, start 0.050111 (attached pic)
"""


def test_parser_reads_levelled_mp4_description() -> None:
    parsed = parse_ffmpeg_info(MP4_LEVELLED)
    assert parsed.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert parsed.duration_s == pytest.approx(63.25)
    assert parsed.start_s == 0.0
    assert parsed.tags["title"] == "My clip"  # not the Output section's
    assert parsed.tags["description"] == "multi\nline: with colon"
    assert parsed.tags["compatible_brands"] == "isomiso2avc1mp41"
    video, audio = parsed.streams
    assert (video.kind, video.codec, video.width, video.height) == ("video", "h264", 1920, 1080)
    assert video.fps == pytest.approx(29.97)
    assert video.rotation_deg == -90.0
    assert video.tags["handler_name"] == "VideoHandler"
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48000, 6)
    assert parsed.errors == ("stream 1, offset 0x4e78: partial file",)


def test_parser_skips_chapters_and_uses_tbr_without_fps() -> None:
    parsed = parse_ffmpeg_info(MKV_PLAIN)
    assert parsed.container == "matroska,webm"
    assert parsed.tags == {"title": "Chaptered", "ENCODER": "Lavf63.1.102"}
    assert parsed.video is not None and parsed.video.fps == 25.0
    assert parsed.audio is not None and parsed.audio.channels == 6
    assert parsed.audio.tags["ARTIST"] == "Somebody"
    assert parsed.errors == ()


def test_parser_handles_programs_missing_duration_and_cover_art() -> None:
    parsed = parse_ffmpeg_info(TS_AND_COVER)
    assert parsed.container == "mpegts"
    assert parsed.duration_s is None and parsed.start_s == pytest.approx(1.456778)
    assert parsed.tags == {}  # the program's service_name is not a container tag
    assert parsed.audio is not None and parsed.audio.channels == 2
    assert parsed.video is None  # cover art is not a video
    assert parsed.streams[1].attached_pic and parsed.streams[1].width == 600


def test_parser_without_an_input_section() -> None:
    text = "[in#0 @ 0x1] [error] Error opening input: Invalid data found when processing input\n"
    parsed = parse_ffmpeg_info(text)
    assert parsed.container is None and parsed.streams == ()
    assert parsed.errors == ("Error opening input: Invalid data found when processing input",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+42.6354-083.2868/", (42.6354, -83.2868)),
        ("+42.6354-083.2868+123.456/", (42.6354, -83.2868)),
        ("-33.8568+151.2153+010.000CRSWGS_84/", (-33.8568, 151.2153)),
        ("+4238.124-08317.208/", (42.6354, -83.2868)),
        ("+423807.44-0831712.48/", (42.6354, -83.2868)),
        ("+42.6354-83.2868", (42.6354, -83.2868)),
        ("+95.0000+010.0000/", None),
        ("not a place", None),
        ("", None),
    ],
)
def test_parse_iso6709(text: str, expected: tuple[float, float] | None) -> None:
    result = parse_iso6709(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-6)


def test_gps_tag_keys_and_format() -> None:
    apple = {"com.apple.quicktime.location.ISO6709": "+51.5007-000.1246+020.000/"}
    assert gps_from_tags(apple) == pytest.approx((51.5007, -0.1246))
    assert gps_from_tags({"location-eng": "+10.0000+020.0000/"}) == (10.0, 20.0)
    assert gps_from_tags({"location": "garbage", "location-fra": "+1.0000+002.0000/"}) == (1, 2)
    assert gps_from_tags({"title": "+10+020/"}) is None
    assert parse_iso6709(format_iso6709(-33.856812, 151.215291)) == pytest.approx(
        (-33.856812, 151.215291), abs=1e-6
    )


def test_parse_creation_time() -> None:
    assert parse_creation_time("2024-05-06T07:08:09.000000Z") == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    local = parse_creation_time("2019-04-20T14:03:11-0700")
    assert local == datetime(2019, 4, 20, 21, 3, 11, tzinfo=UTC)
    assert local is not None and local.tzinfo == UTC
    assert parse_creation_time("2024-05-06 07:08:09") == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert parse_creation_time("2024-05-06T07:08:09Z;2024-05-06T07:08:09.5Z") == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    for placeholder in ("1970-01-01T00:00:00.000000Z", "1904-01-01T00:00:00Z", "2019", "soon"):
        assert parse_creation_time(placeholder) is None
    tags = {
        "creation_time": "1970-01-01T00:00:00Z",
        "com.apple.quicktime.creationdate": "2021-06-01T05:00:00+0200",
    }
    assert creation_time_from_tags(tags) == datetime(2021, 6, 1, 3, 0, tzinfo=UTC)
    east = datetime(2021, 6, 1, 5, tzinfo=timezone(timedelta(hours=2)))
    assert creation_time_from_tags({"date": east.isoformat()}) == east
