"""Window-level dataset: dense index from durations, random windows, items and targets."""

from __future__ import annotations

import logging
import runpy

import numpy as np
import pytest
import torch
from repo_paths import TESTS
from torch.utils.data import DataLoader

from geoforensics.core.audio import (
    MelFrontEnd,
    count_windows,
    get_frontend_config,
    load_audio,
    window_starts,
)
from geoforensics.core.data.inatsounds import INatSounds
from geoforensics.core.data.windows import WindowDataset
from geoforensics.core.data.xcdc import XCDC
from geoforensics.core.errors import InputError

RATE = 22_050


@pytest.fixture(scope="module")
def frontend() -> MelFrontEnd:
    return MelFrontEnd(get_frontend_config("paper"))


@pytest.fixture(scope="module")
def long_train(tmp_path_factory: pytest.TempPathFactory) -> INatSounds:
    """The fake train split with recordings 20x longer: 7, 6, 5 and 6 s."""
    script = runpy.run_path(str(TESTS / "data" / "inatsounds" / "data.py"), run_name="fake")
    root = script["write_dataset"](tmp_path_factory.mktemp("inat-long"), duration_scale=20.0)
    return INatSounds(root, "train")


def test_dense_index_counts_every_window_without_decoding(
    long_train: INatSounds, frontend: MelFrontEnd
) -> None:
    dataset = WindowDataset(long_train, frontend, mode="dense")
    config = frontend.config
    expected = [count_windows(r.duration, config) for r in long_train]
    # 7 s: starts 0, 1.5, 3, (4.5 would end at 7.5) -> 3; 6 s -> 3; 5 s -> 2.
    assert expected == [3, 3, 2, 3]
    assert len(dataset) == sum(expected) == 11
    np.testing.assert_array_equal(dataset.windows_per_recording, expected)
    np.testing.assert_array_equal(dataset.window_offsets(), [0, 3, 6, 8, 11])
    starts = window_starts(round(7.0 * RATE), config.window_samples, config.stride_samples)
    assert [dataset.start_sample(i) for i in range(3)] == [(0, int(s)) for s in starts]
    assert dataset.start_sample(-1) == (3, 2 * config.stride_samples)


def test_dense_items_are_the_frontend_images_of_their_slices(
    long_train: INatSounds, frontend: MelFrontEnd
) -> None:
    dataset = WindowDataset(long_train, frontend, mode="dense")
    index = 7  # recording 2 (Gryllus, 5 s), its second window
    image, target = dataset[index]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    recording = long_train[2]
    window, stride = frontend.window_samples, frontend.stride_samples
    whole = load_audio(recording.path)
    expected = frontend.window_image(whole[stride : stride + window])
    torch.testing.assert_close(image, expected, atol=1e-5, rtol=0)
    assert float(target["latitude"]) == pytest.approx(recording.latitude, abs=1e-4)
    assert float(target["longitude"]) == pytest.approx(recording.longitude, abs=1e-4)
    assert int(target["category"]) == recording.category_index == 2
    assert int(target["recording_index"]) == 2
    assert target["recording_id"] == recording.id == 103
    assert float(target["start_s"]) == pytest.approx(1.5)


def test_random_mode_gives_one_window_per_recording(
    long_train: INatSounds, frontend: MelFrontEnd
) -> None:
    dataset = WindowDataset(long_train, frontend, mode="random", seed=3)
    assert len(dataset) == len(long_train) == 4
    loader = DataLoader(dataset, batch_size=4, shuffle=False)
    images, targets = next(iter(loader))
    assert images.shape == (4, 3, 224, 224)
    assert targets["recording_index"].tolist() == [0, 1, 2, 3]
    assert targets["recording_id"].tolist() == [101, 102, 103, 107]
    assert targets["category"].tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(
        targets["latitude"], torch.tensor(long_train.coords()[:, 0], dtype=torch.float32)
    )
    for position, start_s in enumerate(targets["start_s"].tolist()):
        room = long_train[position].duration - 3.0
        assert 0.0 <= start_s <= room + 1e-6


def test_random_offsets_are_seeded_per_epoch(long_train: INatSounds, frontend: MelFrontEnd) -> None:
    def starts(seed: int, epoch: int) -> list[int]:
        dataset = WindowDataset(long_train, frontend, mode="random", seed=seed)
        dataset.set_epoch(epoch)
        return [dataset.start_sample(i)[1] for i in range(len(dataset))]

    assert starts(3, 0) == starts(3, 0)
    epochs = [starts(3, epoch) for epoch in range(4)]
    assert len({tuple(s) for s in epochs}) == 4
    assert starts(3, 0) != starts(4, 0)
    # Offsets are any sample, not only multiples of the stride.
    stride = frontend.stride_samples
    assert any(s % stride for epoch in epochs for s in epoch)


def test_short_recordings_give_one_padded_window(frontend: MelFrontEnd) -> None:
    train = INatSounds(TESTS / "data" / "inatsounds", "train")  # 0.25-0.35 s recordings
    dataset = WindowDataset(train, frontend, mode="dense")
    assert len(dataset) == 4
    image, target = dataset[0]
    assert image.shape == (3, 224, 224)
    assert float(target["start_s"]) == 0.0
    # Beyond the recording the padding is silence: the right part of the image is the floor.
    assert float(image[0, :, -20:].max()) == 0.0
    assert float(image[0, :, :10].max()) > 0.5


def test_xcdc_rows_without_audio_are_left_out(
    frontend: MelFrontEnd, caplog: pytest.LogCaptureFixture
) -> None:
    xcdc = XCDC(TESTS / "data" / "xcdc")
    with caplog.at_level(logging.WARNING, logger="geoforensics.core.data.windows"):
        dataset = WindowDataset(xcdc, frontend, mode="dense", duration_source="probe")
    assert "left out 2 recordings without audio" in caplog.text
    # The WAVs are 0.25 s stand-ins: read from their headers, one window each.
    assert len(dataset) == 3
    np.testing.assert_array_equal(dataset.recording_indices, [0, 1, 3])
    _, target = dataset[2]
    assert target["recording_id"] == "100004"
    assert int(target["category"]) == -1
    assert int(target["recording_index"]) == 3


def test_metadata_longer_than_audio_pads_with_silence(
    frontend: MelFrontEnd, caplog: pytest.LogCaptureFixture
) -> None:
    xcdc = XCDC(TESTS / "data" / "xcdc")
    dataset = WindowDataset(xcdc, frontend, mode="dense")
    # The CSV says 3:05 for the first row: (185 - 3) / 1.5 + 1 = 122 windows.
    assert dataset.windows_per_recording[0] == 122
    with caplog.at_level(logging.WARNING, logger="geoforensics.core.data.windows"):
        image, _ = dataset[5]
    assert float(image.max()) == 0.0
    assert "audio ends before a window the metadata duration implies" in caplog.text


def test_bad_options_are_input_errors(long_train: INatSounds, frontend: MelFrontEnd) -> None:
    with pytest.raises(InputError, match="window mode must be one of dense, random"):
        WindowDataset(long_train, frontend, mode="all")
    with pytest.raises(InputError, match="duration_source must be one of metadata, probe"):
        WindowDataset(long_train, frontend, duration_source="guess")
    with pytest.raises(InputError, match="dense"):
        WindowDataset(long_train, frontend, mode="random").window_offsets()
    with pytest.raises(IndexError):
        WindowDataset(long_train, frontend)[11]
