"""Section g: accuracy of the fast path (ONNX Runtime, or OpenVINO when installed) vs the
plain torch path, with the demo model on the tiny SYNTHETIC world's test split.

The speed of sections a-c comes from running the audio encoder's graph outside torch; this
section checks it costs no accuracy: accuracy at 25/200/750/2,500 km must match within 0.5
points, and it reports how often the top-1 place is the same.

``core.models`` (torch) is imported inside the function: the measurement subprocesses import
this package (see :mod:`.fixtures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.data import INatSounds
from geoforensics.core.geo.metrics import geolocation_metrics
from geoforensics.eval.perf.fixtures import (
    demo_model,
    inference_backend,
    inference_precision,
    retrieval_index,
    tiny_world,
)
from geoforensics.eval.perf.harness import (
    Figure,
    PerfSettings,
    Section,
    register_section,
    section_title,
    timed,
)


@register_section(
    "g",
    "accuracy",
    title="accuracy: fast path vs plain torch path (tiny synthetic world, demo model)",
)
def measure_accuracy(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section g: demo model on the tiny world's test split, fast path vs plain torch path
    (``world``: another synthetic world; None: the tiny world)."""
    from geoforensics.core.models.inference import predict_recordings
    from geoforensics.core.models.onnx_backend import onnx_runner

    root = tiny_world() if world is None else world
    test = list(INatSounds(root, "test"))
    if settings.quick:
        test = test[:12]
    train_coords = np.unique(INatSounds(root, "train").coords(), axis=0)
    index = retrieval_index(train_coords)
    model = demo_model()
    true = np.array([[r.latitude, r.longitude] for r in test], dtype=np.float64)
    with inference_backend("auto"):  # the product's path: OpenVINO when installed
        runner = onnx_runner(model)
        runtime = "torch" if runner is None else runner.name
    results = {}
    runs = [("torch", "f32"), ("auto", "f32")]
    with inference_backend("openvino"), inference_precision("bf16"):
        half = None if runner is None or runner.name != "OpenVINO" else onnx_runner(model)
        if half is not None and getattr(half, "precision", "f32") == "bf16":
            runs.append(("openvino", "bf16"))  # only where the CPU has bfloat16
    for backend, precision in runs:
        with inference_backend(backend), inference_precision(precision):
            seconds, pred = timed(
                lambda: predict_recordings(model, test, index, progress=False, on_error="skip")
            )
        key = backend if precision == "f32" else precision
        results[key] = (seconds, pred, geolocation_metrics(pred, true))
    torch_s, torch_pred, torch_m = results["torch"]
    onnx_s, onnx_pred, onnx_m = results["auto"]
    figures = _accuracy_figures(1, f"{runtime} vs torch", onnx_m, torch_m)
    worst = max(abs(f.ours - f.baseline) for f in figures)
    figures.append(
        Figure("g5", f"predict_recordings time, {len(test)} test recordings", onnx_s, torch_s, "s")
    )
    if "bf16" in results:
        half_m = results["bf16"][2]
        figures += _accuracy_figures(6, "OpenVINO bf16 (opt-in) vs torch", half_m, torch_m)
    same = float(np.mean(np.all(np.isclose(onnx_pred, torch_pred), axis=1)))
    notes = [
        f"demo model on {len(test)} test recordings of the tiny SYNTHETIC world (seed 0), "
        f"gallery = {len(train_coords)} train locations; median error {onnx_m.median_km:.0f} "
        f"vs {torch_m.median_km:.0f} km; identical top-1 place for {100 * same:.1f} % of "
        f"recordings; largest accuracy difference {worst:.2f} pp",
    ]
    if "bf16" in results:
        half_pred, half_m = results["bf16"][1], results["bf16"][2]
        half_same = float(np.mean(np.all(np.isclose(half_pred, torch_pred), axis=1)))
        notes.append(
            f"bf16 (GEOFORENSICS_INFERENCE_PRECISION=bf16): median error "
            f"{half_m.median_km:.0f} km; identical top-1 place for {100 * half_same:.1f} % of "
            "recordings"
        )
    else:
        notes.append("bf16 not measured: OpenVINO is not installed or the CPU has no bfloat16")
    return Section("g", section_title("g"), figures, notes)


def _accuracy_figures(first: int, label: str, ours: Any, base: Any) -> list[Figure]:
    """Figures g``first``... : accuracy at 25/200/750/2,500 km of ``ours`` vs ``base``
    (geolocation metrics), met when within 0.5 percentage points."""
    figures = []
    for number, threshold in enumerate((25.0, 200.0, 750.0, 2500.0), start=first):
        value, reference = 100 * ours.accuracy[threshold], 100 * base.accuracy[threshold]
        figures.append(
            Figure(
                f"g{number}",
                f"acc@{threshold:g} km (%), {label}",
                value,
                reference,
                "%",
                higher_is_better=True,
                target="within 0.5 pp",
                met=abs(value - reference) <= 0.5,
            )
        )
    return figures
