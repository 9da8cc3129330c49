"""Section b: audio throughput, in seconds of audio per wall-clock second (x real time).

AG-CLIP on ``mobilenet_v3_large`` (224 x 224, stride 1.5 s; random weights: speed does not
depend on them) and the shipped demo model through the product's path (streamed decoding,
batched front-end, the graph in ONNX Runtime or OpenVINO) beside :func:`plain_window_embeddings`,
a plain eager float32 loop over one window at a time; then where the time goes (front-end
alone, model alone), OpenVINO vs ONNX Runtime when OpenVINO is installed (b6), bfloat16 (b7),
b1 the way ``check`` runs a recorded model, without torch (b8), and BirdNET's audio path (b5).
The target is 300x real time for b1.

Modules that load torch (``core.models``) are imported inside the functions: the measurement
subprocesses import this package (see :mod:`.fixtures`).
"""

from __future__ import annotations

import functools
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geoforensics.core.audio.decode import stream_audio
from geoforensics.core.audio.frontend import MelFrontEnd
from geoforensics.core.audio.windows import iter_window_batches, iter_windows
from geoforensics.core.errors import GeoforensicsError
from geoforensics.core.species.birdnet_audio import BirdNETAudio
from geoforensics.eval.perf.fixtures import (
    audio_file,
    demo_model,
    inference_backend,
    inference_precision,
    random_agclip,
    work_dir,
)
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
    timed,
)

if TYPE_CHECKING:
    from geoforensics.core.models.geolocator import AudioGeolocator


def plain_window_embeddings(model: AudioGeolocator, path: str | os.PathLike[str]) -> np.ndarray:
    """The baseline: one window at a time, eager torch float32, no batching, no ONNX.

    (W, embed_dim) raw embeddings of the dense windows of ``path`` (same windows as
    :func:`~geoforensics.core.models.inference.window_outputs`).
    """
    import torch

    frontend = MelFrontEnd(model.frontend_config)
    rate = frontend.config.sample_rate
    rows = []
    model.eval()
    with torch.no_grad():
        for _start, window in iter_windows(
            stream_audio(path, sample_rate=rate), frontend.window_samples, frontend.stride_samples
        ):
            rows.append(model(frontend.images([window]))["embedding"].numpy())
    return np.concatenate(rows)


def _plain_frontend_loop(model: AudioGeolocator, path: Path) -> int:
    frontend = MelFrontEnd(model.frontend_config)
    count = 0
    for _start, window in iter_windows(
        stream_audio(path, sample_rate=frontend.config.sample_rate),
        frontend.window_samples,
        frontend.stride_samples,
    ):
        frontend.images([window])
        count += 1
    return count


def _frontend_batches(model: AudioGeolocator, path: Path) -> int:
    frontend = MelFrontEnd(model.frontend_config)
    return sum(len(batch) for batch in iter_window_batches(path, frontend, 32))


@register_section(
    "b",
    "throughput",
    title="audio throughput (x real time) vs a plain eager fp32 per-window loop",
)
def measure_throughput(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section b: seconds of audio per wall-clock second, ours vs a plain per-window loop;
    ``world`` is not used."""
    import torch

    from geoforensics.core.models.inference import window_outputs
    from geoforensics.core.models.onnx_backend import onnx_runner

    long_clip = audio_file(f"tp-{settings.throughput_s:g}s.wav", settings.throughput_s)
    short_clip = audio_file(f"tp-{settings.plain_s:g}s.wav", settings.plain_s, seed=1)
    figures: list[Figure] = []
    notes: list[str] = []
    large = random_agclip()
    rows = [("b1", "AG-CLIP mobilenet_v3_large 224x224", large, ">= 300x real time", 300.0)]
    rows.append(("b2", "demo model (mobilenet_v3_small_128)", demo_model(), "", 0.0))
    for key, label, model, target, needed in rows:
        window_outputs(model, short_clip)  # warm-up
        ours_s, _ = timed(functools.partial(window_outputs, model, long_clip), settings.repeats)
        base_s, _ = timed(functools.partial(plain_window_embeddings, model, short_clip))
        ours = settings.throughput_s / ours_s
        figures.append(
            Figure(
                key,
                f"{label}: decode + front-end + model",
                ours,
                settings.plain_s / base_s,
                "x RT",
                higher_is_better=True,
                target=target,
                met=(ours >= needed) if needed else None,
            )
        )
    # where the time goes for the large model: the model alone and the front-end alone
    frontend_s, windows = timed(lambda: _frontend_batches(large, long_clip))
    plain_frontend_s, plain_windows = timed(lambda: _plain_frontend_loop(large, short_clip))
    figures.append(
        Figure(
            "b3",
            "front-end alone (decode + log-mel 224x224), batched vs per window",
            settings.throughput_s / frontend_s,
            settings.plain_s / plain_frontend_s,
            "x RT",
            higher_is_better=True,
        )
    )
    images = torch.rand(32, *large.frontend_config.input_shape)
    runner = onnx_runner(large)
    stride = large.frontend_config.stride_samples / large.frontend_config.sample_rate
    if runner is not None:
        runner(images)
        model_s, _ = timed(lambda: runner(images), settings.repeats)
    else:
        with torch.inference_mode():
            model_s, _ = timed(lambda: large(images), settings.repeats)
    with torch.no_grad():
        large(images[:1])
        eager_s, _ = timed(lambda: [large(images[i : i + 1]) for i in range(8)])
    runtime = "torch" if runner is None else runner.name
    figures.append(
        Figure(
            "b4",
            f"mobilenet_v3_large model alone: {runtime} batch 32 vs eager batch 1",
            32 * stride / model_s,
            8 * stride / eager_s,
            "x RT",
            higher_is_better=True,
            note=f"{32 / model_s:.0f} vs {8 / eager_s:.0f} windows/s",
        )
    )
    figures.extend(_graph_runtimes(settings, large, long_clip, short_clip))
    figures.extend(_without_torch(settings, large, long_clip, short_clip))
    notes.append(
        f"x RT = seconds of audio per wall-clock second; windows of 3 s every {stride:g} s; ours "
        f"= window_outputs on a {settings.throughput_s:g} s WAV (batches of 32, {runtime}), "
        f"baseline = one window at a time in eager torch fp32 on a {settings.plain_s:g} s WAV "
        f"({plain_windows} windows; front-end alone: {windows} windows batched)"
    )
    figures.extend(_birdnet_throughput(settings, notes))
    return Section("b", section_title("b"), figures, notes)


def _graph_runtimes(
    settings: PerfSettings, model: AudioGeolocator, long_clip: Path, short_clip: Path
) -> list[Figure]:
    """b6: b1's decode + front-end + model with the graph run by OpenVINO vs ONNX Runtime
    (when OpenVINO is installed), same run."""
    from geoforensics.core.models.inference import window_outputs
    from geoforensics.core.models.onnx_backend import onnx_runner, openvino_available

    if not openvino_available():
        return []
    seconds = {}
    for name in ("onnx", "openvino"):
        with inference_backend(name):
            window_outputs(model, short_clip)  # graph compiled, caches warm
            call = functools.partial(window_outputs, model, long_clip)
            seconds[name], _ = timed(call, settings.repeats)
    with inference_backend("openvino"), inference_precision("bf16"):
        used = getattr(onnx_runner(model), "precision", "f32")
        window_outputs(model, short_clip)
        call = functools.partial(window_outputs, model, long_clip)
        seconds["bf16"], _ = timed(call, settings.repeats)
    ours = settings.throughput_s / seconds["openvino"]
    half = settings.throughput_s / seconds["bf16"]
    return [
        Figure(
            "b6",
            "AG-CLIP mobilenet_v3_large 224x224: decode + front-end + model, OpenVINO (f32) vs "
            "ONNX Runtime",
            ours,
            settings.throughput_s / seconds["onnx"],
            "x RT",
            higher_is_better=True,
            target=">= 300x real time",
            met=ours >= 300.0,
        ),
        Figure(
            "b7",
            f"b1 with GEOFORENSICS_INFERENCE_PRECISION=bf16 (OpenVINO runs {used}) vs f32",
            half,
            ours,
            "x RT",
            higher_is_better=True,
            target=">= 300x real time",
            met=half >= 300.0,
            note="bfloat16 needs AMX or AVX-512 BF16; without them OpenVINO runs f32",
        ),
    ]


def _without_torch(
    settings: PerfSettings, model: AudioGeolocator, long_clip: Path, short_clip: Path
) -> list[Figure]:
    """b8: b1's work the way ``check`` and ``locate`` do it once a model's graph is recorded
    (:class:`~geoforensics.core.models.graph_agclip.GraphAGCLIP`: the numpy front-end and the
    graph, no torch) vs b1's path (torch front-end, same graph runtime), timed in turns."""
    from geoforensics.core.models import save_model, window_outputs
    from geoforensics.core.models.graph_agclip import open_graph_agclip, record_graph
    from geoforensics.core.models.onnx_backend import exported_graph

    folder = work_dir() / "b1-mobilenet_v3_large"
    save_model(model, folder)  # b1's model as a model folder, its graph recorded for it
    record_graph(folder, exported_graph(model))
    graph = open_graph_agclip(folder)
    if graph is None:  # no graph runtime here (GEOFORENSICS_INFERENCE_BACKEND=torch)
        return []
    graph.window_outputs(short_clip)  # warm-ups (b1's runner is compiled again after b6, b7)
    window_outputs(model, short_clip)
    graph_s, torch_s = [], []
    for _ in range(max(1, settings.repeats)):  # in turns: both see the same machine
        graph_s.append(timed(functools.partial(graph.window_outputs, long_clip))[0])
        torch_s.append(timed(functools.partial(window_outputs, model, long_clip))[0])
    ours = settings.throughput_s / statistics.median(graph_s)
    return [
        Figure(
            "b8",
            f"b1 without torch (check's path: numpy front-end + {graph.runner.name} graph) vs b1",
            ours,
            settings.throughput_s / statistics.median(torch_s),
            "x RT",
            higher_is_better=True,
            target=">= 300x real time",
            met=ours >= 300.0,
        )
    ]


def _birdnet_throughput(settings: PerfSettings, notes: list[str]) -> list[Figure]:
    """b5: BirdNET's audio path as ``check`` runs it (OpenVINO when installed) vs the TFLite
    runtime, both batched with every core, same file and run."""
    threads = os.cpu_count() or 1
    try:
        ours = BirdNETAudio(num_threads=threads)
        tflite = BirdNETAudio(num_threads=threads, backend="tflite")
    except GeoforensicsError as error:
        notes.append(f"BirdNET path not measured: {error}")
        return []
    clip = audio_file(f"bn-{settings.birdnet_s:g}s.wav", settings.birdnet_s, seed=2)
    ours.windows(clip)
    ours_s, _ = timed(lambda: ours.windows(clip), settings.repeats)
    tflite.windows(clip)
    base_s, _ = timed(lambda: tflite.windows(clip), settings.repeats)
    notes.append(
        f"BirdNET: BirdNETAudio.windows (decode at 48 kHz, 3 s windows, batch "
        f"{ours.batch_size}, {threads} threads) on a {settings.birdnet_s:g} s WAV, run by "
        f"{ours.backend} vs tflite"
    )
    return [
        Figure(
            "b5",
            f"BirdNET V2.4 audio path: {ours.backend} (the default) vs the TFLite runtime",
            settings.birdnet_s / ours_s,
            settings.birdnet_s / base_s,
            "x RT",
            higher_is_better=True,
        )
    ]
