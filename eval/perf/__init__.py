"""`geoforensics perf`: every speed and memory figure of the product beside a baseline measured
in the same run, as a ratio.

One module per section, each registering its ``measure(settings, world) -> Section`` with
:func:`~.harness.register_section` under a letter (the run order) and a name, either of which
``--only`` takes:

a. :mod:`.clip` (``clip``): one 60 s clip end to end, ours vs GeoCLIP's ``predict`` way;
b. :mod:`.throughput` (``throughput``): seconds of audio per wall-clock second vs a plain
   eager float32 per-window loop (AG-CLIP, the demo model, BirdNET; OpenVINO vs ONNX Runtime);
c. :mod:`.long_recordings` (``long_recordings``): 30 min, 1 h, 2 h, each in a fresh process:
   peak memory and time;
d. :mod:`.topk` (``topk``): top-10 over 100k and 1M vectors, faiss vs torch, time and memory;
e. :mod:`.range_tables` (``range_tables``): range tables batched vs one call per location;
f. :mod:`.training` (``training``): training samples/s, cached spectrograms vs decoding;
g. :mod:`.accuracy` (``accuracy``): accuracy of the fast path vs the plain torch path;
h. :mod:`.species_evidence` (``species_evidence``): heard columns + cached totals vs full
   range tables;
i. :mod:`.check` (``check``): ``geoforensics check`` of a 10 s clip, first vs later run, warm
   calls, peak memory;
j. :mod:`.batch` (``batch``): ``check FOLDER`` with 2 worker processes vs 1;
k. :mod:`.long_check` (``long_check``): ``check`` of a 2-hour real recording with a model,
   a later check (the recorded graph, no torch) vs the model's first (torch).

What they share: :mod:`.harness` (figures, report, registry, timing, :func:`run_perf`,
:func:`format_report`), :mod:`.fixtures` (generated audio, models, gallery, tiny world),
:mod:`.memory` (RSS, peak and private memory from /proc) and :mod:`.children` (the
measurement subprocesses, ``python -m geoforensics.eval.perf child TASK JSON``).

``--quick`` shrinks every size (for the tests and a fast look). Audio inputs are generated
(seeded noise with tone bursts); the synthetic world is generated once under the cache.

Every measurement subprocess imports this package, and sections c, d and i measure those
processes' memory, libraries and start-up: so modules that load torch, faiss or lightning
(``core.models``, ``core.geoclip`` encoders and index, ``core.data.WindowDataset``,
``train.datamodule``, torch and faiss themselves) are imported inside the functions that use
them, never at the top of a module of this package.
"""

from __future__ import annotations

from geoforensics.eval.perf import (
    accuracy,
    batch,
    check,
    clip,
    long_check,
    long_recordings,
    range_tables,
    species_evidence,
    throughput,
    topk,
    training,
)
from geoforensics.eval.perf.children import child_main, register_child, run_child
from geoforensics.eval.perf.fixtures import (
    demo_model,
    gallery_coords,
    inference_backend,
    inference_precision,
    random_agclip,
    retrieval_index,
    tiny_world,
    work_dir,
    write_test_audio,
)
from geoforensics.eval.perf.harness import (
    Figure,
    PerfReport,
    PerfSettings,
    Section,
    SectionEntry,
    format_report,
    machine_description,
    parse_only,
    register_section,
    run_perf,
    section_entries,
    section_letters,
    section_titles,
    timed,
)
from geoforensics.eval.perf.memory import descendants, peak_rss_mb, rss_mb
from geoforensics.eval.perf.throughput import plain_window_embeddings

#: Section letters in run order.
SECTIONS = section_letters()
#: Letter -> title of every section.
SECTION_TITLES = section_titles()

__all__ = [
    "SECTIONS",
    "SECTION_TITLES",
    "Figure",
    "PerfReport",
    "PerfSettings",
    "Section",
    "SectionEntry",
    "accuracy",
    "batch",
    "check",
    "child_main",
    "clip",
    "demo_model",
    "descendants",
    "format_report",
    "gallery_coords",
    "inference_backend",
    "inference_precision",
    "long_check",
    "long_recordings",
    "machine_description",
    "parse_only",
    "peak_rss_mb",
    "plain_window_embeddings",
    "random_agclip",
    "range_tables",
    "register_child",
    "register_section",
    "retrieval_index",
    "rss_mb",
    "run_child",
    "run_perf",
    "section_entries",
    "section_letters",
    "section_titles",
    "species_evidence",
    "throughput",
    "timed",
    "tiny_world",
    "topk",
    "training",
    "work_dir",
    "write_test_audio",
]
