"""`geoforensics perf`: every speed and memory figure of the product beside a baseline measured
in the same run, as a ratio (issue 7).

Sections (each a function returning a :class:`Section` of :class:`Figure` rows):

a. one 60 s clip geolocated end to end: ours (:func:`locate_recording` with cached gallery
   embeddings + faiss, the model loaded once as a server or the app does) vs GeoCLIP's
   ``predict`` way (the same audio path, then the 100k gallery re-embedded by the location
   encoder on every call and brute-force similarity);
b. audio throughput in seconds of audio per wall-clock second: AG-CLIP on
   ``mobilenet_v3_large`` (224 x 224, stride 1.5 s; random weights: speed does not depend on
   them), the shipped demo model, and BirdNET, beside a plain eager float32 per-window loop;
c. a long recording (30 min, 1 h, 2 h) in a fresh subprocess each: peak RSS and time;
d. top-k over 100k and 1M random unit 512-d vectors, 1 and 1,000 queries: faiss IndexFlatIP
   vs torch matmul + topk, time and peak RSS growth (each in its own subprocess);
e. range tables, batched vs one model call per location (synthetic world, BirdNET);
f. training throughput (samples/s, data loading + forward/backward/step) with cached
   spectrograms vs decoding the audio of every window each epoch;
g. accuracy of the fast path vs the plain torch path on the tiny synthetic world's test split
   (the demo model): accuracy at 25/200/750/2,500 km must match within 0.5 points;
h. species evidence (BirdNET range model over ``land-1deg``): today's path (the full
   6,522-species range table for the week, built or read from its 327 MB cache) vs the
   heard species' columns from the model's weights plus cached per-place totals, for a lone
   species and a chorus, on a new week and a cached one, and the cache bytes per week.
i. ``geoforensics check`` of a 10 s MP4 of real birdsong (the Seattle soundscape of
   ``../shared/realaudio`` when present, else the shipped demo clip) claimed to be Sydney:
   the first run on a machine (empty cache folder) vs a later run in a fresh process
   (target < 6 s), a warm call in a process that already checked a clip, as the app and
   folder checks run (target < 1 s), and the peak resident memory (target < 1 GB).

``--quick`` shrinks every size (for the tests and a fast look). Audio inputs are generated
(seeded noise with tone bursts); the synthetic world is generated once under the cache.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoforensics.core.errors import InputError

if TYPE_CHECKING:
    from geoforensics.core.geoclip.retrieval import RetrievalIndex
    from geoforensics.core.models.geolocator import AudioGeolocator

#: Section letters in run order.
SECTIONS = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
SECTION_TITLES = {
    "a": "one clip end to end vs GeoCLIP's predict (gallery re-embedded per call)",
    "b": "audio throughput (x real time) vs a plain eager fp32 per-window loop",
    "c": "long recordings: peak memory flat, time linear",
    "d": "top-10 retrieval: faiss IndexFlatIP vs torch matmul + topk",
    "e": "range tables: batched vs one call per location",
    "f": "training throughput: cached spectrograms vs decoding audio every epoch",
    "g": "accuracy: fast path vs plain torch path (tiny synthetic world, demo model)",
    "h": "species evidence: heard columns + cached totals vs full range tables",
    "i": "check of a 10 s clip of real birdsong: a later CLI run vs the first, warm vs cold",
    "j": "batch check of a folder: clips per minute with 2 worker processes vs 1",
}
MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its baseline.

    ``ratio`` is how many times better ours is (baseline / ours for times and memory,
    ours / baseline for throughputs); ``target`` says what is required, ``met`` whether it
    is (None: no target).
    """

    key: str
    name: str
    ours: float
    baseline: float
    unit: str
    higher_is_better: bool = False
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        """How many times better ours is than the baseline."""
        if self.higher_is_better:
            return self.ours / self.baseline if self.baseline > 0 else math.inf
        return self.baseline / self.ours if self.ours > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (with the ratio)."""
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True)
class Section:
    """The figures of one section (a-g) and notes on how they were measured."""

    letter: str
    title: str
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return {
            "letter": self.letter,
            "title": self.title,
            "figures": [figure.to_dict() for figure in self.figures],
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class PerfSettings:
    """Sizes of every measurement (:meth:`full` for the real run, :meth:`quick` for tests)."""

    quick: bool
    clip_s: float
    gallery_size: int | None  # None: the whole geoclip-100k gallery
    throughput_s: float
    plain_s: float
    birdnet_s: float
    long_s: tuple[float, ...]
    topk_sizes: tuple[int, ...]
    topk_batches: tuple[int, ...]
    range_locations: int
    birdnet_range_locations: int
    train_encoder: str
    repeats: int
    species_gallery: str = "land-1deg"

    @classmethod
    def full(cls) -> PerfSettings:
        """The sizes the issue asks for."""
        return cls(
            quick=False,
            clip_s=60.0,
            gallery_size=None,
            throughput_s=300.0,
            plain_s=60.0,
            birdnet_s=120.0,
            long_s=(1800.0, 3600.0, 7200.0),
            topk_sizes=(100_000, 1_000_000),
            topk_batches=(1, 1000),
            range_locations=2000,
            birdnet_range_locations=500,
            train_encoder="mobilenet_v3_small_128",
            repeats=3,
        )

    @classmethod
    def quick_settings(cls) -> PerfSettings:
        """Everything scaled down (seconds instead of minutes)."""
        return cls(
            quick=True,
            clip_s=10.0,
            gallery_size=10_000,
            throughput_s=15.0,
            plain_s=6.0,
            birdnet_s=9.0,
            long_s=(60.0, 120.0, 240.0),
            topk_sizes=(10_000, 50_000),
            topk_batches=(1, 100),
            range_locations=200,
            birdnet_range_locations=50,
            train_encoder="test_tiny",
            repeats=1,
            species_gallery="land-4deg",
        )


@dataclass
class PerfReport:
    """Machine description, settings and every section."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    sections: list[Section]
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return {
            "machine": self.machine,
            "settings": self.settings,
            "command": self.command,
            "sections": [section.to_dict() for section in self.sections],
        }


# ---------------------------------------------------------------------------------------------
# helpers


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024.0 / 1024.0
    except OSError:
        pass
    return float("nan")


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def machine_description() -> dict[str, Any]:
    """CPU model, cores, RAM, library versions, threads and the load average now."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(_ram_gb(), 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": _version("faiss-cpu"),
        "onnxruntime": _version("onnxruntime"),
        "load_average": [round(value, 2) for value in load],
    }


def _timed(function: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """(median seconds over ``repeats`` calls, last result)."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@contextlib.contextmanager
def inference_backend(name: str) -> Iterator[None]:
    """Run the block with ``GEOFORENSICS_INFERENCE_BACKEND`` set to ``name``."""
    from geoforensics.core.models.onnx_backend import BACKEND_ENV

    before = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = before


def write_test_audio(
    path: Path, seconds: float, sample_rate: int = 22050, seed: int = 0, fmt: str = "WAV"
) -> Path:
    """Seeded noise with tone bursts (written in 60 s blocks, so hours need little memory)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = round(seconds * sample_rate)
    block = 60 * sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(
        str(path), "w", samplerate=sample_rate, channels=1, format=fmt, subtype="PCM_16"
    ) as out:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / sample_rate
            freq = 800.0 + 600.0 * np.sin(2 * np.pi * 0.05 * t)
            bursts = (np.sin(2 * np.pi * 0.7 * t) > 0.3) * 0.2
            signal = bursts * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)
            out.write(signal.astype(np.float32))
    return path


def random_agclip(encoder: str = "mobilenet_v3_large", n_species: int = 30) -> AudioGeolocator:
    """A randomly initialised AG-CLIP model (seed 0, eval mode): speed does not depend on
    the weights, and a fixed seed keeps the cached ONNX graph reusable across runs."""
    import torch

    from geoforensics.core.models.geolocator import AudioGeolocator, ModelConfig

    torch.manual_seed(0)
    return AudioGeolocator(ModelConfig(kind="agclip", encoder=encoder, n_species=n_species)).eval()


def demo_model() -> AudioGeolocator:
    """The shipped demo AG-CLIP model (mobilenet_v3_small_128, trained on the tiny world)."""
    from geoforensics.core.models.geolocator import load_model
    from geoforensics.core.paths import assets_dir

    return load_model(assets_dir() / "models" / "demo_agclip")


def plain_window_embeddings(model: AudioGeolocator, path: str | os.PathLike[str]) -> np.ndarray:
    """The baseline: one window at a time, eager torch float32, no batching, no ONNX.

    (W, embed_dim) raw embeddings of the dense windows of ``path`` (same windows as
    :func:`~geoforensics.core.models.inference.window_outputs`).
    """
    import torch

    from geoforensics.core.audio.decode import stream_audio
    from geoforensics.core.audio.frontend import MelFrontEnd
    from geoforensics.core.audio.windows import iter_windows

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


def _gallery_coords(size: int | None) -> np.ndarray:
    from geoforensics.core.geo.gallery import geoclip_100k_gallery

    coords = geoclip_100k_gallery().coords
    if size is not None and size < len(coords):
        pick = np.random.default_rng(0).choice(len(coords), size, replace=False)
        coords = coords[np.sort(pick)]
    return np.asarray(coords, dtype=np.float64)


def _retrieval_index(coords: np.ndarray) -> RetrievalIndex:
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings
    from geoforensics.core.geoclip.retrieval import RetrievalIndex

    return RetrievalIndex(coords, cached_gallery_embeddings(coords, progress=False))


def _work_dir() -> Path:
    from geoforensics.core.paths import cache_dir

    return cache_dir("perf")


def _audio_file(name: str, seconds: float, **kwargs: Any) -> Path:
    """A generated test file under the cache (made once, reused)."""
    path = _work_dir() / name
    if not path.is_file():
        write_test_audio(path, seconds, **kwargs)
    return path


def tiny_world(root: Path | None = None) -> Path:
    """The tiny SYNTHETIC world (seed 0, the demo model's training world), generated once."""
    from geoforensics.core.synth import generate_world

    target = root if root is not None else _work_dir() / "world-tiny-seed0"
    if not (target / "world" / "world.json").is_file():
        generate_world(target, "tiny", seed=0, progress=False, force=True)
    return target


# ---------------------------------------------------------------------------------------------
# subprocess measurements (peak RSS belongs to one process)


def _rss_mb() -> float:
    """Resident set size of this process now (MB)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError):
        return float("nan")


def _status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory line of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``, ``RssAnon``...) in MB;
    None when there is no such line or process (not Linux, or the process ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory so far (MB).

    Reads ``VmHWM`` from /proc/self/status: ``ru_maxrss`` is no use in a child process,
    because Linux carries the parent's high-water mark over ``fork`` + ``exec`` (a child of a
    1.6 GB parent reports >= 1.6 GB whatever it does). Falls back to ``ru_maxrss`` elsewhere.
    """
    peak = _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if peak is None else peak


def run_child(
    task: str, params: dict[str, Any], timeout: float = 900.0, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``task`` of :func:`child_main` in a fresh Python process (``env`` added to the
    environment); its JSON result."""
    command = [sys.executable, "-m", "geoforensics.eval.perf", "child", task, json.dumps(params)]
    environment = None if env is None else {**os.environ, **env}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=environment
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"perf child {task!r} failed: {' | '.join(tail)}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class _AnonPeak:
    """Samples this process's private (anonymous) resident memory every 20 ms in a thread;
    ``peak_mb`` is the largest value seen (shared library pages are not counted)."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = _anon_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, _anon_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak_mb, _anon_mb())


def _anon_mb() -> float:
    anon = _status_mb("RssAnon")
    return float("nan") if anon is None else anon


def _child_long(params: dict[str, Any]) -> dict[str, Any]:
    """Locate one long file as ``geoforensics locate`` does (land-1deg gallery) with the large
    random model; RSS after loading, peak RSS and peak private memory over the whole process."""
    from geoforensics.core.models.inference import locate_recording

    sampler = _AnonPeak()
    model = random_agclip(params["encoder"])
    index = _retrieval_index(np.load(params["gallery"]))
    locate_recording(model, params["warmup"], index)  # ONNX session, lazy imports
    ready_rss, ready_peak = _rss_mb(), _peak_rss_mb()
    start = time.perf_counter()
    prediction = locate_recording(model, params["path"], index)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "windows": len(prediction.windows),
        "gallery_size": len(index),
        "ready_rss_mb": ready_rss,
        "ready_peak_mb": ready_peak,
        "peak_mb": _peak_rss_mb(),
        "peak_private_mb": sampler.stop(),
    }


def _unit_chunks(n: int, dim: int, seed: int, rows: int = 10_000) -> Iterator[np.ndarray]:
    """Seeded random unit vectors in chunks of ``rows`` (small temporaries)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, rows):
        part = rng.standard_normal((min(rows, n - start), dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        yield part


def _unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    start = 0
    for part in _unit_chunks(n, dim, seed):
        out[start : start + len(part)] = part
        start += len(part)
    return out


def _child_topk(params: dict[str, Any]) -> dict[str, Any]:
    """Time and memory of top-k search over ``n`` unit vectors with faiss or torch.

    Memory: ``gallery_mb`` = RSS growth from building the gallery (faiss: added in chunks, so
    only the index holds it); ``b{B}_extra_mb`` = peak RSS above that during the search.
    """
    n, dim, k, impl = int(params["n"]), int(params["dim"]), int(params["k"]), params["impl"]
    chunk = int(params.get("torch_chunk", 250))
    if impl == "torch":
        import torch

        torch.zeros(1)
    else:
        import faiss
    base_rss = _rss_mb()
    results: dict[str, Any] = {"base_rss_mb": base_rss}
    if impl == "faiss":
        import faiss

        index = faiss.IndexFlatIP(dim)
        for part in _unit_chunks(n, dim, seed=0):
            index.add(part)

        def search(queries: np.ndarray) -> np.ndarray:
            _, ids = index.search(queries, k)
            return np.asarray(ids)

    else:
        import torch

        matrix = torch.from_numpy(_unit_vectors(n, dim, seed=0))

        def search(queries: np.ndarray) -> np.ndarray:
            q = torch.from_numpy(queries)
            ids = []
            with torch.inference_mode():
                for start in range(0, len(q), chunk):
                    scores = q[start : start + chunk] @ matrix.T
                    ids.append(torch.topk(scores, k, dim=1).indices)
            return torch.cat(ids).numpy()

    ready = _rss_mb()
    results["gallery_mb"] = ready - base_rss
    for batch in params["batches"]:
        queries = _unit_vectors(int(batch), dim, seed=1)
        search(queries[:1])  # warm-up (threads, lazy allocations)
        repeats = 5 if batch == 1 else 1
        seconds, ids = _timed(functools.partial(search, queries), repeats)
        results[f"b{batch}_s"] = seconds
        results[f"b{batch}_extra_mb"] = max(0.0, _peak_rss_mb() - ready)
        results[f"b{batch}_first_ids"] = [int(v) for v in ids[0][:k]]
    return results


def _child_check(params: dict[str, Any]) -> dict[str, Any]:
    """``geoforensics check`` as the CLI runs it, then ``warm`` more checks of the same clip in
    this process, as the app and folder checks run them (analysis and report writing timed
    apart; each report into its own folder): when the first ended (epoch seconds), the warm
    seconds, and the process's peak resident memory."""
    from geoforensics.core import cli
    from geoforensics.core.commands.check import options_from_args
    from geoforensics.core.forensics import run_check, write_report

    argv = list(params["argv"])
    out = Path(params["out"])
    status = cli.main([*argv, "--out", str(out / "run0"), "--quiet"])
    first_done = time.time()
    args = cli.build_parser().parse_args([*argv, "--quiet"])
    options = options_from_args(args)
    analysis, writing = [], []
    for i in range(int(params.get("warm", 0))):
        start = time.perf_counter()
        report = run_check(Path(args.path), options)
        middle = time.perf_counter()
        write_report(report, out / f"run{i + 1}")
        analysis.append(middle - start)
        writing.append(time.perf_counter() - middle)
    verdict = json.loads((out / "run0" / "report.json").read_text())["verdict"]["label"]
    return {"status": status, "first_done": first_done, "analysis_s": analysis,
            "writing_s": writing, "peak_mb": _peak_rss_mb(), "verdict": verdict}  # fmt: skip


def _descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (Linux /proc)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            queue += children
    return found


def _child_batch(params: dict[str, Any]) -> dict[str, Any]:
    """``geoforensics check FOLDER --workers N`` as the CLI runs it, timed in this process;
    the peak resident memory of each worker process (sampled every 50 ms) and of this one."""
    import threading

    from geoforensics.core import cli

    peaks: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            for pid in _descendants(os.getpid()):
                peaks[pid] = max(peaks.get(pid, 0.0), _status_mb("VmRSS", pid) or 0.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    status = cli.main(list(params["argv"]))
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    summary = json.loads((Path(params["out"]) / "summary.json").read_text())
    return {"status": status, "seconds": seconds, "done": summary["done"],
            "failed": summary["failed"], "worker_peak_mb": sorted(peaks.values()),
            "main_peak_mb": _peak_rss_mb()}  # fmt: skip


_CHILD_TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "batch": _child_batch,
    "check": _child_check,
    "long": _child_long,
    "topk": _child_topk,
}


def child_main(argv: Sequence[str]) -> int:
    """Entry of the measurement subprocesses: ``child TASK JSON`` -> one JSON line."""
    if len(argv) != 3 or argv[0] != "child" or argv[1] not in _CHILD_TASKS:
        print(f"usage: python -m geoforensics.eval.perf child {{{','.join(_CHILD_TASKS)}}} JSON")
        return 2
    result = _CHILD_TASKS[argv[1]](json.loads(argv[2]))
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# a. one clip end to end


def _geoclip_predict_way(
    model: AudioGeolocator, path: Path, coords: np.ndarray, encoder: Any, k: int = 5
) -> np.ndarray:
    """GeoCLIP's ``predict``: the gallery is re-embedded on every call, then brute-force
    similarity, softmax and top-k in torch. Returns the top-k gallery indices."""
    import torch

    from geoforensics.core.geoclip.embeddings import embed_locations
    from geoforensics.core.geoclip.location_encoder import geoclip_temperature
    from geoforensics.core.models.inference import window_outputs

    windows = window_outputs(model, path)
    query = torch.from_numpy(windows.outputs["embedding"].mean(axis=0, keepdims=True))
    query = torch.nn.functional.normalize(query, dim=1)
    gallery = torch.from_numpy(embed_locations(coords, encoder=encoder, progress=False))
    with torch.inference_mode():
        probs = torch.softmax(query @ gallery.T * geoclip_temperature(), dim=1)
        return torch.topk(probs, k, dim=1).indices[0].numpy()


def measure_clip(settings: PerfSettings) -> Section:
    """Section a: one clip end to end, ours vs GeoCLIP's predict way (same audio model)."""
    from geoforensics.core.geoclip.location_encoder import default_location_encoder
    from geoforensics.core.models.inference import locate_recording

    clip = _audio_file(f"clip-{settings.clip_s:g}s.wav", settings.clip_s)
    coords = _gallery_coords(settings.gallery_size)
    index = _retrieval_index(coords)  # built once, as a server or the app holds it
    encoder = default_location_encoder()
    figures: list[Figure] = []
    models = [("demo model (mobilenet_v3_small_128)", demo_model())]
    models.append(("AG-CLIP mobilenet_v3_large", random_agclip()))
    agree = []
    for number, (label, model) in enumerate(models, start=1):
        locate_recording(model, clip, index)  # warm-up: ONNX session, lazy imports
        ours_s, prediction = _timed(functools.partial(locate_recording, model, clip, index), 3)
        base_s, top = _timed(functools.partial(_geoclip_predict_way, model, clip, coords, encoder))
        agree.append(int(top[0]) == int(prediction.indices[0]))
        figures.append(
            Figure(
                f"a{number}",
                f"{settings.clip_s:g} s clip end to end, {label}",
                ours_s,
                base_s,
                "s",
                target=">= 100x",
                met=base_s / ours_s >= 100.0,
            )
        )
    # the gallery step alone (what the ratio isolates): cached + faiss vs re-embed + brute
    from geoforensics.core.geoclip.embeddings import embed_locations

    query = np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32)
    query /= np.linalg.norm(query)
    index.search(query, 5)
    ours_g, _ = _timed(lambda: (index.scores(query), index.search(query, 5)), 5)

    def rebuild() -> None:
        import torch

        gallery = torch.from_numpy(embed_locations(coords, encoder=encoder, progress=False))
        torch.topk(torch.from_numpy(query) @ gallery.T, 5)

    base_g, _ = _timed(rebuild)
    figures.append(
        Figure(
            "a3",
            f"gallery step only ({len(coords):,} places): cached+faiss vs re-embed+brute force",
            ours_g,
            base_g,
            "s",
        )
    )
    notes = [
        f"gallery: geoclip-100k ({len(coords):,} places); ours = locate_recording with the "
        "gallery embeddings cached on disk and a faiss index built once (server/app: model "
        "and index loaded once, first call excluded), median of 3 calls",
        "baseline = the same audio path, then the gallery re-embedded by the GeoCLIP location "
        "encoder on every call (the encoder itself loaded once) + torch matmul/softmax/top-k "
        "(one call: it takes tens of seconds)",
        "top-1 place identical in ours and the baseline: "
        + ", ".join("yes" if a else "no" for a in agree),
    ]
    return Section("a", SECTION_TITLES["a"], figures, notes)


# ---------------------------------------------------------------------------------------------
# b. audio throughput


def _plain_frontend_loop(model: AudioGeolocator, path: Path) -> int:
    from geoforensics.core.audio.decode import stream_audio
    from geoforensics.core.audio.frontend import MelFrontEnd
    from geoforensics.core.audio.windows import iter_windows

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
    from geoforensics.core.audio.frontend import MelFrontEnd
    from geoforensics.core.audio.windows import iter_window_batches

    frontend = MelFrontEnd(model.frontend_config)
    return sum(len(batch) for batch in iter_window_batches(path, frontend, 32))


def measure_throughput(settings: PerfSettings) -> Section:
    """Section b: seconds of audio per wall-clock second, ours vs a plain per-window loop."""
    import torch

    from geoforensics.core.models.inference import window_outputs

    long_clip = _audio_file(f"tp-{settings.throughput_s:g}s.wav", settings.throughput_s)
    short_clip = _audio_file(f"tp-{settings.plain_s:g}s.wav", settings.plain_s, seed=1)
    figures: list[Figure] = []
    notes: list[str] = []
    large = random_agclip()
    rows = [("b1", "AG-CLIP mobilenet_v3_large 224x224", large, ">= 300x real time", 300.0)]
    rows.append(("b2", "demo model (mobilenet_v3_small_128)", demo_model(), "", 0.0))
    for key, label, model, target, needed in rows:
        window_outputs(model, short_clip)  # warm-up
        ours_s, _ = _timed(functools.partial(window_outputs, model, long_clip), settings.repeats)
        base_s, _ = _timed(functools.partial(plain_window_embeddings, model, short_clip))
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
    frontend_s, windows = _timed(lambda: _frontend_batches(large, long_clip))
    plain_frontend_s, plain_windows = _timed(lambda: _plain_frontend_loop(large, short_clip))
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
    from geoforensics.core.models.onnx_backend import onnx_runner

    images = torch.rand(32, *large.frontend_config.input_shape)
    runner = onnx_runner(large)
    stride = large.frontend_config.stride_samples / large.frontend_config.sample_rate
    if runner is not None:
        runner(images)
        model_s, _ = _timed(lambda: runner(images), settings.repeats)
    else:
        with torch.inference_mode():
            model_s, _ = _timed(lambda: large(images), settings.repeats)
    with torch.no_grad():
        large(images[:1])
        eager_s, _ = _timed(lambda: [large(images[i : i + 1]) for i in range(8)])
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
    notes.append(
        f"x RT = seconds of audio per wall-clock second; windows of 3 s every {stride:g} s; ours "
        f"= window_outputs on a {settings.throughput_s:g} s WAV (batches of 32, {runtime}), "
        f"baseline = one window at a time in eager torch fp32 on a {settings.plain_s:g} s WAV "
        f"({plain_windows} windows; front-end alone: {windows} windows batched)"
    )
    figures.extend(_birdnet_throughput(settings, notes))
    return Section("b", SECTION_TITLES["b"], figures, notes)


def _graph_runtimes(
    settings: PerfSettings, model: AudioGeolocator, long_clip: Path, short_clip: Path
) -> list[Figure]:
    """b6: b1's decode + front-end + model with the graph run by OpenVINO vs ONNX Runtime
    (when OpenVINO is installed), same run."""
    from geoforensics.core.models.inference import window_outputs
    from geoforensics.core.models.onnx_backend import openvino_available

    if not openvino_available():
        return []
    seconds = {}
    for name in ("onnx", "openvino"):
        with inference_backend(name):
            window_outputs(model, short_clip)  # graph compiled, caches warm
            call = functools.partial(window_outputs, model, long_clip)
            seconds[name], _ = _timed(call, settings.repeats)
    ours = settings.throughput_s / seconds["openvino"]
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
        )
    ]


def _birdnet_throughput(settings: PerfSettings, notes: list[str]) -> list[Figure]:
    from geoforensics.core.errors import GeoforensicsError

    try:
        from geoforensics.core.species.birdnet_audio import BirdNETAudio

        batched = BirdNETAudio(num_threads=os.cpu_count() or 1)
        single = BirdNETAudio(num_threads=os.cpu_count() or 1, batch_size=1)
    except GeoforensicsError as error:
        notes.append(f"BirdNET path not measured: {error}")
        return []
    clip = _audio_file(f"bn-{settings.birdnet_s:g}s.wav", settings.birdnet_s, seed=2)
    batched.windows(clip)
    ours_s, _ = _timed(lambda: batched.windows(clip), settings.repeats)
    single.windows(clip)
    base_s, _ = _timed(lambda: single.windows(clip))
    notes.append(
        f"BirdNET: BirdNETAudio.windows (48 kHz, 3 s windows, TFLite, batch "
        f"{batched.batch_size}) vs the same with one window per interpreter call, "
        f"{settings.birdnet_s:g} s WAV"
    )
    return [
        Figure(
            "b5",
            "BirdNET V2.4 audio path: batched vs one window per call",
            settings.birdnet_s / ours_s,
            settings.birdnet_s / base_s,
            "x RT",
            higher_is_better=True,
        )
    ]


# ---------------------------------------------------------------------------------------------
# c. long recordings


def measure_long(settings: PerfSettings) -> Section:
    """Section c: peak RSS and time for 30 min, 1 h, 2 h of audio, each in a fresh process."""
    from geoforensics.core.fileio import save_npy_atomic
    from geoforensics.core.geo.gallery import build_gallery
    from geoforensics.core.geoclip.embeddings import cached_gallery_embeddings

    gallery = build_gallery("land-1deg")  # the coordinates, as a server holds them
    cached_gallery_embeddings(gallery, progress=False)  # embedded once, here
    coords_file = _work_dir() / "land-1deg-coords.npy"
    save_npy_atomic(coords_file, np.asarray(gallery.coords, dtype=np.float64))
    results = []
    warmup = _audio_file("long-warmup-10s.flac", 10.0, sample_rate=8000, fmt="FLAC")
    for seconds in settings.long_s:
        path = _audio_file(f"long-{seconds:g}s.flac", seconds, sample_rate=8000, fmt="FLAC")
        params = {
            "encoder": "mobilenet_v3_large",
            "path": str(path),
            "warmup": str(warmup),
            "gallery": str(coords_file),
        }
        results.append((seconds, run_child("long", params)))
    first_s, first = results[0]
    last_s, last = results[-1]
    scale = last_s / first_s
    label = _duration_label(last_s)
    figures = [
        Figure(
            "c1",
            f"peak RSS, {label} of audio (baseline: {_duration_label(first_s)})",
            last["peak_mb"],
            first["peak_mb"],
            "MB",
            target="< 1536 MB",
            met=last["peak_mb"] < 1536.0,
            note="ratio ~1 = memory flat",
        ),
        Figure(
            "c2",
            f"peak private memory, {label} (baseline: {_duration_label(first_s)})",
            last["peak_private_mb"],
            first["peak_private_mb"],
            "MB",
            note="RssAnon, without shared library pages",
        ),
        Figure(
            "c3",
            f"time, {label} vs {scale:g} x {_duration_label(first_s)}",
            last["seconds"],
            first["seconds"] * scale,
            "s",
            note="ratio ~1 = time linear",
        ),
    ]
    notes = [
        "each length in a fresh process, as `geoforensics locate --method agclip` runs: "
        "AG-CLIP mobilenet_v3_large (random weights) + its default land-1deg gallery "
        f"({last['gallery_size']:,} places, faiss), locate_recording on an 8 kHz FLAC (streamed, "
        "resampled to 22,050 Hz, batches of 32 windows); peak RSS = VmHWM of that process "
        "(Python, torch's shared libraries, ONNX Runtime and the gallery included); private = "
        "peak anonymous memory (RssAnon, sampled every 20 ms: no shared library pages)",
    ]
    for seconds, result in results:
        notes.append(
            f"{_duration_label(seconds)}: {result['seconds']:.1f} s "
            f"({seconds / result['seconds']:.0f}x RT, {result['windows']} windows), peak RSS "
            f"{result['peak_mb']:.0f} MB (after loading and one warm-up call: "
            f"{result['ready_peak_mb']:.0f} MB), peak private {result['peak_private_mb']:.0f} MB"
        )
    return Section("c", SECTION_TITLES["c"], figures, notes)


def _duration_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# ---------------------------------------------------------------------------------------------
# d. top-k


def measure_topk(settings: PerfSettings) -> Section:
    """Section d: faiss IndexFlatIP vs torch matmul + topk, time and peak RSS growth."""
    figures: list[Figure] = []
    notes = [
        "random unit 512-d float32 vectors, top-10; each library in its own process (RSS "
        "measured there); memory = RSS growth from holding the gallery (n x 512 x 4 bytes: "
        "195 MB for 100k, 1.95 GB for 1M) + the peak RSS above that during the search; torch "
        "scores queries in chunks of 250 (a (250, n) float32 score block: 95 MB at 100k, "
        "954 MB at 1M), faiss blocks queries and gallery internally; batch-1 times are the "
        "median of 5",
    ]
    agree = []
    for n in settings.topk_sizes:
        params = {"n": n, "dim": 512, "k": 10, "batches": list(settings.topk_batches)}
        faiss_r = run_child("topk", {**params, "impl": "faiss"})
        torch_r = run_child("topk", {**params, "impl": "torch"})
        for batch in settings.topk_batches:
            figures.append(
                Figure(
                    f"d{len(figures) + 1}",
                    f"top-10 over {n:,}, {batch:,} quer{'y' if batch == 1 else 'ies'}: time",
                    faiss_r[f"b{batch}_s"] * 1000.0,
                    torch_r[f"b{batch}_s"] * 1000.0,
                    "ms",
                )
            )
            agree.append(faiss_r[f"b{batch}_first_ids"] == torch_r[f"b{batch}_first_ids"])
        top = max(settings.topk_batches)
        figures.append(
            Figure(
                f"d{len(figures) + 1}",
                f"top-10 over {n:,}, {top:,} queries: memory (gallery + search peak)",
                faiss_r["gallery_mb"] + faiss_r[f"b{top}_extra_mb"],
                torch_r["gallery_mb"] + torch_r[f"b{top}_extra_mb"],
                "MB",
                note=f"search alone {faiss_r[f'b{top}_extra_mb']:.0f} vs "
                f"{torch_r[f'b{top}_extra_mb']:.0f} MB",
            )
        )
    notes.append(
        "same top-10 ids from faiss and torch for the first query: "
        + ", ".join("yes" if a else "no" for a in agree)
    )
    return Section("d", SECTION_TITLES["d"], figures, notes)


# ---------------------------------------------------------------------------------------------
# e. range tables


def measure_range_tables(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section e: batched range tables vs one model call per location."""
    from geoforensics.core.errors import GeoforensicsError
    from geoforensics.core.geo.gallery import land_gallery
    from geoforensics.core.species.range_table import compare_speed
    from geoforensics.core.synth.ranges import SyntheticRangeModel

    land = land_gallery(1.0).coords
    rng = np.random.default_rng(0)
    figures: list[Figure] = []
    notes: list[str] = []
    root = tiny_world() if world is None else world
    models: list[tuple[str, Any, int]] = [
        ("synthetic world's true ranges", SyntheticRangeModel.load(root), settings.range_locations)
    ]
    try:
        from geoforensics.core.species.ranges import BirdNETRangeModel

        models.append(("BirdNET V2.4 range model", BirdNETRangeModel(), 0))
    except GeoforensicsError as error:
        notes.append(f"BirdNET range model not measured: {error}")
    for label, model, count in models:
        count = count or settings.birdnet_range_locations
        coords = land[np.sort(rng.choice(len(land), count, replace=False))]
        result = compare_speed(model, coords, week=None)
        n_species = len(model.species)
        figures.append(
            Figure(
                f"e{len(figures) + 1}",
                f"{label}: {count:,} land places x {n_species:,} species",
                result["batched_s"],
                result["unbatched_s"],
                "s",
                note=f"max |batched - per call| {result['max_abs_diff']:.1e}",
            )
        )
    notes.append(
        "core.species.range_table.compare_speed: the cached-table code path (cache off), "
        "batched vs one call per location, year-round presence"
    )
    return Section("e", SECTION_TITLES["e"], figures, notes)


# ---------------------------------------------------------------------------------------------
# h. species evidence

#: Species lists of section h: a lone widespread species and a small chorus (BirdNET names).
LONE_SPECIES = ("Zonotrichia capensis",)
CHORUS = ("Junco hyemalis", "Poecile atricapillus", "Turdus migratorius", "Spinus pinus")


def _evidence_today(model: Any, coords: np.ndarray, week: int, idx: np.ndarray, rule: str,
                    cache: bool) -> np.ndarray:  # fmt: skip
    """Today's path: the week's full range table, then the likelihood over it."""
    from geoforensics.core.species.likelihood import SpeciesLikelihood
    from geoforensics.core.species.range_table import range_table

    table = range_table(model, coords, week, cache=cache)
    return SpeciesLikelihood(table, model=rule).log_likelihood(idx)


def _evidence_new(model: Any, coords: np.ndarray, week: int, idx: np.ndarray, rule: str,
                  cache: bool) -> np.ndarray:  # fmt: skip
    """The new path: heard columns from the weights, totals per week (cached)."""
    from geoforensics.core.species.likelihood import columns_log_likelihood, draws_of
    from geoforensics.core.species.range_evidence import range_evidence

    weights = np.ones(idx.size)
    need = draws_of(weights, rule) > 0
    found = range_evidence(model, coords, week, idx, need_totals=need, cache=cache)
    return columns_log_likelihood(found.columns, weights, rule, found.totals, found.n_species)


def measure_species_evidence(settings: PerfSettings) -> Section:
    """Section h: range evidence of a lone species and a chorus, today's path vs the new one
    (same run, same gallery), on a week never seen (nothing cached) and on a cached week."""
    from geoforensics.core.errors import GeoforensicsError
    from geoforensics.core.geo.gallery import resolve_gallery
    from geoforensics.core.species.names import match_species
    from geoforensics.core.species.range_evidence import _totals_files, birdnet_mlp, range_totals
    from geoforensics.core.species.range_table import range_table, range_table_files
    from geoforensics.core.species.ranges import BirdNETRangeModel

    notes: list[str] = []
    try:
        model = BirdNETRangeModel()
    except GeoforensicsError as error:
        return Section("h", SECTION_TITLES["h"], [], [f"BirdNET not measured: {error}"])
    start = time.perf_counter()
    mlp = birdnet_mlp(model)
    load_s = time.perf_counter() - start
    if mlp is None:
        return Section(
            "h", SECTION_TITLES["h"], [], ["BirdNET's range graph differs: no fast path"]
        )
    coords = resolve_gallery(settings.species_gallery).coords
    species = list(model.species)
    lists = {
        "lone species (focal)": (match_species(list(LONE_SPECIES), species).indices, "focal"),
        f"chorus of {len(CHORUS)} (focal)": (match_species(list(CHORUS), species).indices, "focal"),
    }
    figures: list[Figure] = []
    worst = 0.0
    where = f"{settings.species_gallery}, {len(coords):,} places x {len(species):,} species"
    new_week, cached_week = 30, 31
    range_table(model, coords, cached_week)  # today's cache for the cached-week figures
    range_totals(model, coords, cached_week)  # the new cache
    for label, (idx, rule) in lists.items():
        for when, week, cache in (
            ("new week", new_week, False),
            ("cached week", cached_week, True),
        ):
            today_s, today = _timed(
                functools.partial(_evidence_today, model, coords, week, idx, rule, cache)
            )
            ours_s, ours = _timed(
                functools.partial(_evidence_new, model, coords, week, idx, rule, cache)
            )
            worst = max(worst, float(np.max(np.abs(today - ours))))
            key = f"h{len(figures) + 1}"
            name = f"{label}, {when}: {where}"
            met = ours_s < 2.0
            figures.append(Figure(key, name, ours_s, today_s, "s", target="< 2 s", met=met))
    table_file = range_table_files(model, coords, cached_week)[0]
    totals_file = _totals_files(model, coords, cached_week)[0]
    table_mb, totals_mb = table_file.stat().st_size / MB, totals_file.stat().st_size / MB
    figures.append(Figure(f"h{len(figures) + 1}", "cache per week", totals_mb, table_mb, "MB"))
    notes.append(
        f"largest |log-likelihood difference| between the paths {worst:.1e} (float16 "
        "rounding of a few entries); a new week's chorus pays the all-species pass once for "
        "its totals (cached after), a lone focal species needs no totals"
    )
    notes.append(f"weights read and checked against the TFLite interpreter once: {load_s:.2f} s")
    return Section("h", SECTION_TITLES["h"], figures, notes)


# ---------------------------------------------------------------------------------------------
# i. check of a 10 s clip

#: The real recording section i checks (from ``../shared/realaudio`` beside the checkout).
CHECK_RECORDING = "xc563936_seattle_wa_soundscape.mp3"


def check_clip(seconds: float = 10.0) -> tuple[Path, list[str], str]:
    """(clip, check arguments, what it is): a ``seconds`` MP4 of the Seattle soundscape
    titled and claimed "Sydney" when ``../shared/realaudio`` is beside the checkout, else the
    shipped SYNTHETIC demo clip (its claim as the demo runs it)."""
    from geoforensics.core.paths import assets_dir

    real = Path(__file__).resolve().parents[2] / "shared" / "realaudio" / CHECK_RECORDING
    if real.is_file():
        clip = _work_dir() / f"check-seattle-{seconds:g}s.mp4"
        if not clip.is_file():
            from geoforensics.core.audio import load_audio
            from geoforensics.core.media import make_test_video

            audio = load_audio(real, sample_rate=48_000, duration_s=seconds)
            frames = [np.full((64, 96, 3), 60 + 20 * i, np.uint8) for i in range(4)]
            title = {"title": "Morning birds, Sydney"}
            make_test_video(clip, audio=audio, sample_rate=48_000, frames=frames,
                            fps=len(frames) / seconds, tags=title)  # fmt: skip
        argv = ["check", str(clip), "--claimed", "Sydney", "--date", "2020-03-16"]
        return clip, argv, f"{seconds:g} s of {CHECK_RECORDING} (real), claimed Sydney"
    clip = assets_dir() / "demo" / "demo_clip.mp4"
    return clip, ["check", str(clip)], "the shipped SYNTHETIC demo clip (no real recording here)"


def measure_check(settings: PerfSettings) -> Section:
    """Section i: the first check on a machine (empty cache) vs a later one, both fresh
    processes timed from the outside as a user sees them; warm calls; peak memory."""
    import tempfile

    _, argv, what = check_clip(10.0)
    warm_repeats = 1 if settings.quick else 3
    with tempfile.TemporaryDirectory(prefix="geoforensics-perf-check-") as tmp:
        env = {"GEOFORENSICS_CACHE": str(Path(tmp) / "cache")}
        runs = []
        for label, warm in (("first", 0), ("later", warm_repeats)):
            start = time.time()
            result = run_child("check", {"argv": argv, "out": str(Path(tmp) / label),
                                         "warm": warm}, env=env)  # fmt: skip
            runs.append((result["first_done"] - start, result))
    (first_s, first), (later_s, later) = runs
    analysis_s = statistics.median(later["analysis_s"])
    total_s = analysis_s + statistics.median(later["writing_s"])
    repeats = len(later["analysis_s"])
    figures = [
        Figure(
            "i1",
            f"check, a later run (fresh process, caches filled): {what}",
            later_s,
            first_s,
            "s",
            target="< 6 s",
            met=later_s < 6.0,
            note="baseline: the first run on a machine, empty cache folder",
        ),
        Figure(
            "i2",
            "check, warm analysis (models loaded in the process, as the app)",
            analysis_s,
            later_s,
            "s",
            target="< 1 s",
            met=analysis_s < 1.0,
            note=f"median of {repeats}; baseline: the later cold run",
        ),
        Figure(
            "i3",
            "check, warm analysis + report (JSON, HTML, PNG maps), as a folder check",
            total_s,
            later_s,
            "s",
            target="< 1 s",
            met=total_s < 1.0,
            note=f"median of {repeats}; baseline: the later cold run",
        ),
        Figure(
            "i4",
            "check, peak resident memory of the process",
            later["peak_mb"],
            first["peak_mb"],
            "MB",
            target="< 1 GB",
            met=later["peak_mb"] < 1024.0,
            note="baseline: the first run's peak",
        ),
    ]
    notes = [
        f"verdict {later['verdict']}; times include the Python start and imports; the cache "
        "of the first run holds the BirdNET two-output model, the slim city table, the "
        "effort prior and the week's range totals"
    ]
    return Section("i", SECTION_TITLES["i"], figures, notes)


# ---------------------------------------------------------------------------------------------
# j. batch check


def batch_folder(n_clips: int, seconds: float, folder: Path) -> str:
    """``n_clips`` WAV clips of ``seconds`` cut from the real recordings in
    ``../shared/realaudio`` (in turn, at successive offsets) when they are beside the checkout,
    else copies of the shipped SYNTHETIC demo clip; what the folder holds."""
    import shutil

    import soundfile as sf

    from geoforensics.core.audio import load_audio
    from geoforensics.core.paths import assets_dir

    folder.mkdir(parents=True, exist_ok=True)
    real = Path(__file__).resolve().parents[2] / "shared" / "realaudio"
    sources = sorted(p for p in real.glob("*") if p.suffix.lower() in (".mp3", ".wav"))
    if not sources:
        for i in range(n_clips):
            shutil.copy(assets_dir() / "demo" / "demo_clip.mp4", folder / f"clip{i:03d}.mp4")
        return f"{n_clips} copies of the SYNTHETIC demo clip (no real recordings here)"
    decoded = [load_audio(source, sample_rate=48_000) for source in sources]  # once each
    for i in range(n_clips):
        audio = decoded[i % len(sources)]
        start = int((i // len(sources)) * seconds * 48_000) % max(1, audio.size)
        cut = np.resize(np.roll(audio, -start), int(seconds * 48_000))  # short ones loop
        sf.write(folder / f"clip{i:03d}.wav", cut, 48_000)
    return f"{n_clips} clips of {seconds:g} s cut from the {len(sources)} real recordings"


def measure_batch(settings: PerfSettings) -> Section:
    """Section j: ``check FOLDER`` with ``--workers 2`` vs ``--workers 1`` in the same run,
    fresh processes, caches filled first; clips per minute and memory per worker."""
    import tempfile

    n_clips = 4 if settings.quick else 48
    with tempfile.TemporaryDirectory(prefix="geoforensics-perf-batch-") as tmp:
        clips = Path(tmp) / "clips"
        what = batch_folder(n_clips, 10.0, clips)
        base = ["check", str(clips), "--quiet", "--format", "csv,parquet"]
        warm = Path(tmp) / "warm"
        warm_clips = Path(tmp) / "warm-clips"
        warm_clips.mkdir()
        first = sorted(clips.iterdir())[0]
        (warm_clips / first.name).symlink_to(first)
        run_child("batch", {"argv": ["check", str(warm_clips), "--quiet", "--out", str(warm)],
                            "out": str(warm)})  # fmt: skip
        results, tables = {}, {}
        for workers in (1, 2):
            out = Path(tmp) / f"out{workers}"
            argv = [*base, "--out", str(out), "--workers", str(workers)]
            results[workers] = run_child("batch", {"argv": argv, "out": str(out)})
            tables[workers] = (out / "summary.csv").read_bytes()
    one, two = results[1], results[2]
    per_min = {w: 60.0 * n_clips / r["seconds"] for w, r in results.items()}
    worker_peak = max(two["worker_peak_mb"]) if two["worker_peak_mb"] else float("nan")
    figures = [
        Figure(
            "j1",
            f"check FOLDER --workers 2: {what}",
            per_min[2],
            per_min[1],
            "clips/min",
            higher_is_better=True,
            target="> 1.3x of --workers 1 on 2 cores",
            met=per_min[2] > 1.3 * per_min[1],
            note="baseline: --workers 1 (one process); wall time of the whole command",
        ),
        Figure(
            "j2",
            "check FOLDER --workers 2: peak resident memory per worker process",
            worker_peak,
            one["main_peak_mb"],
            "MB",
            note="baseline: the one process of --workers 1 (models + analysis)",
        ),
    ]
    notes = [
        f"--workers 1: {one['seconds']:.1f} s, --workers 2: {two['seconds']:.1f} s for "
        f"{n_clips} clips ({two['done']} checked, {two['failed']} failed); the main process "
        f"of --workers 2 peaked at {two['main_peak_mb']:.0f} MB; the two summary.csv are "
        + ("identical" if tables[1] == tables[2] else "DIFFERENT"),
    ]
    return Section("j", SECTION_TITLES["j"], figures, notes)


# ---------------------------------------------------------------------------------------------
# f. training throughput


def _train_step_fn(model: AudioGeolocator) -> Callable[[Any], None]:
    import torch

    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    def step(images: Any) -> None:
        out = model(images)["embedding"]
        target = torch.nn.functional.normalize(torch.ones_like(out), dim=1)
        loss = 1.0 - torch.nn.functional.cosine_similarity(out, target).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def measure_training(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section f: samples/s of loading + a training step, cached spectrograms vs decoding."""
    import torch
    from torch.utils.data import DataLoader

    from geoforensics.core.audio.frontend import MelFrontEnd
    from geoforensics.core.data import INatSounds
    from geoforensics.core.data import WindowDataset as AudioWindows
    from geoforensics.core.fileio import sha256_file
    from geoforensics.train.datamodule import RandomWindowSampler, SplitData, WindowDataset
    from geoforensics.train.spec_cache import build_spectrogram_cache, images_from_frames

    root = tiny_world() if world is None else world
    dataset = INatSounds(root, "train")
    recordings = list(dataset)
    model = random_agclip(settings.train_encoder)
    frontend = MelFrontEnd(model.frontend_config)
    batch_size = 32
    torch.manual_seed(0)

    build_s, cache = _timed(
        lambda: build_spectrogram_cache(
            recordings,
            frontend.config,
            sha256_file(root / "train.json"),
            progress=False,
        )
    )
    coords = np.array([[r.latitude, r.longitude] for r in recordings], dtype=np.float64)
    split = SplitData(
        "train", dataset, coords, np.zeros(len(recordings), dtype=np.int64), None, "perf"
    )
    cached_loader = DataLoader(
        WindowDataset(cache, split),
        batch_size=batch_size,
        sampler=RandomWindowSampler(cache.random_frame_room(), seed=0),
    )
    step = _train_step_fn(model)

    def cached_epoch() -> int:
        count = 0
        for batch in cached_loader:
            step(images_from_frames(batch["spec"], frontend))
            count += len(batch["spec"])
        return count

    audio = AudioWindows(recordings, frontend, mode="random", seed=0)
    audio_loader = DataLoader(audio, batch_size=batch_size, shuffle=False)

    def decoding_epoch() -> int:
        count = 0
        for images, _target in audio_loader:
            step(images)
            count += len(images)
        return count

    cached_epoch()  # warm-up (first-touch of the memory map, allocator)
    cached_s, cached_n = _timed(cached_epoch)
    decode_s, decode_n = _timed(decoding_epoch)
    figures = [
        Figure(
            "f1",
            f"training samples/s, {settings.train_encoder}: cached spectrograms vs decoding",
            cached_n / cached_s,
            decode_n / decode_s,
            "samples/s",
            higher_is_better=True,
        )
    ]
    notes = [
        f"one epoch of one random 3 s window per recording ({len(recordings)} recordings of "
        f"the tiny SYNTHETIC world's train split), batch {batch_size}, DataLoader in the main "
        "process, forward + backward + SGD step; cached = train.spec_cache uint8 memory map -> "
        "resize (the trainer's path), decoding = core.data.WindowDataset random mode (decode "
        "the window's segment + front-end every epoch)",
        f"building the spectrogram cache once: {build_s:.1f} s (or a cache hit)",
    ]
    model.eval()
    return Section("f", SECTION_TITLES["f"], figures, notes)


# ---------------------------------------------------------------------------------------------
# g. accuracy


def measure_accuracy(settings: PerfSettings, world: Path | None = None) -> Section:
    """Section g: demo model on the tiny world's test split, fast path vs plain torch path."""
    from geoforensics.core.data import INatSounds
    from geoforensics.core.geo.metrics import geolocation_metrics
    from geoforensics.core.models.inference import predict_recordings

    root = tiny_world() if world is None else world
    test = list(INatSounds(root, "test"))
    if settings.quick:
        test = test[:12]
    train_coords = np.unique(INatSounds(root, "train").coords(), axis=0)
    index = _retrieval_index(train_coords)
    model = demo_model()
    true = np.array([[r.latitude, r.longitude] for r in test], dtype=np.float64)
    from geoforensics.core.models.onnx_backend import onnx_runner

    with inference_backend("auto"):  # the product's path: OpenVINO when installed
        runner = onnx_runner(model)
        runtime = "torch" if runner is None else runner.name
    results = {}
    for backend in ("torch", "auto"):
        with inference_backend(backend):
            seconds, pred = _timed(
                lambda: predict_recordings(model, test, index, progress=False, on_error="skip")
            )
        results[backend] = (seconds, pred, geolocation_metrics(pred, true))
    torch_s, torch_pred, torch_m = results["torch"]
    onnx_s, onnx_pred, onnx_m = results["auto"]
    figures: list[Figure] = []
    worst = 0.0
    for threshold in (25.0, 200.0, 750.0, 2500.0):
        ours, base = 100 * onnx_m.accuracy[threshold], 100 * torch_m.accuracy[threshold]
        worst = max(worst, abs(ours - base))
        figures.append(
            Figure(
                f"g{len(figures) + 1}",
                f"acc@{threshold:g} km (%), {runtime} vs torch",
                ours,
                base,
                "%",
                higher_is_better=True,
                target="within 0.5 pp",
                met=abs(ours - base) <= 0.5,
            )
        )
    same = float(np.mean(np.all(np.isclose(onnx_pred, torch_pred), axis=1)))
    figures.append(
        Figure(
            f"g{len(figures) + 1}",
            f"predict_recordings time, {len(test)} test recordings",
            onnx_s,
            torch_s,
            "s",
        )
    )
    notes = [
        f"demo model on {len(test)} test recordings of the tiny SYNTHETIC world (seed 0), "
        f"gallery = {len(train_coords)} train locations; median error {onnx_m.median_km:.0f} "
        f"vs {torch_m.median_km:.0f} km; identical top-1 place for {100 * same:.1f} % of "
        f"recordings; largest accuracy difference {worst:.2f} pp",
    ]
    return Section("g", SECTION_TITLES["g"], figures, notes)


# ---------------------------------------------------------------------------------------------
# running and printing


def parse_only(text: str | None) -> list[str]:
    """``"a,d"`` -> ``["a", "d"]`` (in run order); None or empty -> every section."""
    if not text:
        return list(SECTIONS)
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(SECTIONS))
    if unknown:
        raise InputError(
            f"--only {text!r}: unknown sections {unknown}; choose from a-{SECTIONS[-1]}"
        )
    return [letter for letter in SECTIONS if letter in wanted]


def run_perf(
    only: Sequence[str] | None = None,
    quick: bool = False,
    world: Path | None = None,
    progress: bool = True,
    command: str = "",
) -> PerfReport:
    """Run the chosen sections (all by default) and return the report."""
    from tqdm.auto import tqdm

    settings = PerfSettings.quick_settings() if quick else PerfSettings.full()
    letters = list(only) if only else list(SECTIONS)
    measures: dict[str, Callable[[], Section]] = {
        "a": lambda: measure_clip(settings),
        "b": lambda: measure_throughput(settings),
        "c": lambda: measure_long(settings),
        "d": lambda: measure_topk(settings),
        "e": lambda: measure_range_tables(settings, world),
        "f": lambda: measure_training(settings, world),
        "g": lambda: measure_accuracy(settings, world),
        "h": lambda: measure_species_evidence(settings),
        "i": lambda: measure_check(settings),
        "j": lambda: measure_batch(settings),
    }
    machine = machine_description()
    sections = []
    bar = tqdm(letters, desc="perf", unit="section", disable=not progress, file=sys.stderr)
    for letter in bar:
        bar.set_postfix_str(letter)
        start = time.perf_counter()
        section = measures[letter]()
        sections.append(
            Section(
                section.letter,
                section.title,
                section.figures,
                section.notes,
                time.perf_counter() - start,
            )
        )
    machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return PerfReport(machine, asdict(settings), sections, command)


def _number(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return str(value)
    if unit == "x RT":
        return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"
    if unit == "%":
        return f"{value:.1f} %"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    if abs(value) >= 1:
        return f"{value:.2f} {unit}"
    return f"{value:.3g} {unit}"


def format_report(report: PerfReport) -> str:
    """The report as a Markdown table (figure, ours, baseline, ratio, target, met?) + notes."""
    m = report.machine
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']}, onnxruntime "
        f"{m['onnxruntime']}; load average {m['load_average']} at start, "
        f"{m.get('load_average_end', '?')} at end",
    ]
    if report.command:
        lines.append(f"command: {report.command}")
    lines += [
        "",
        "| figure | ours | baseline | ratio | target | met? |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for section in report.sections:
        lines.append(f"| **{section.letter}. {section.title}** | | | | | |")
        for f in section.figures:
            met = "" if f.met is None else ("yes" if f.met else "**no**")
            name = f.name + (f" ({f.note})" if f.note else "")
            lines.append(
                f"| {f.key} {name} | {_number(f.ours, f.unit)} | {_number(f.baseline, f.unit)} "
                f"| {f.ratio:,.2f}x | {f.target} | {met} |"
            )
    lines.append("")
    for section in report.sections:
        for note in section.notes:
            lines.append(f"- {section.letter}: {note}")
        lines.append(f"- {section.letter}: section took {section.seconds:.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
