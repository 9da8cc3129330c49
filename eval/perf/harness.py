"""What every perf section shares: the figures and the report, the section registry, the sizes,
the machine description, timing, running the chosen sections and printing the report.

A section is a function ``measure(settings, world) -> Section`` registered with
:func:`register_section` under a letter (``a``-``j``, the run order, the README's "perf b1")
and a name (``throughput``); ``--only`` takes either.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from geoforensics.core.errors import InputError


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
    """The figures of one section (a-j) and notes on how they were measured."""

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
        """The full sizes: the figures the README reports."""
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
# the section registry

#: A section: the sizes and the synthetic world (None: the tiny world; most sections make
#: their own inputs and ignore it) -> its figures.
Measure = Callable[[PerfSettings, Path | None], Section]
MeasureT = TypeVar("MeasureT", bound=Measure)


@dataclass(frozen=True)
class SectionEntry:
    """One registered section: its letter (run order), name, title and function."""

    letter: str
    name: str
    title: str
    measure: Measure


_SECTIONS: dict[str, SectionEntry] = {}


def register_section(letter: str, name: str, *, title: str) -> Callable[[MeasureT], MeasureT]:
    """Decorator: register ``measure`` as section ``letter`` (``--only b`` or ``--only name``)."""

    def add(measure: MeasureT) -> MeasureT:
        taken = [e for e in _SECTIONS.values() if letter == e.letter or name == e.name]
        if taken:
            raise ValueError(f"perf section {letter!r} / {name!r} already registered: {taken}")
        _SECTIONS[letter] = SectionEntry(letter, name, title, measure)
        return measure

    return add


def section_entries() -> list[SectionEntry]:
    """Every registered section in run order (by letter)."""
    return [_SECTIONS[letter] for letter in sorted(_SECTIONS)]


def section_letters() -> tuple[str, ...]:
    """The registered section letters in run order."""
    return tuple(entry.letter for entry in section_entries())


def section_titles() -> dict[str, str]:
    """Letter -> title of every registered section."""
    return {entry.letter: entry.title for entry in section_entries()}


def section_title(letter: str) -> str:
    """The title of section ``letter``."""
    return _SECTIONS[letter].title


# ---------------------------------------------------------------------------------------------
# the machine and timing


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
    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def machine_description() -> dict[str, Any]:
    """CPU model, cores, RAM, library versions, threads and the load average now."""
    import torch  # here: the measurement subprocesses import this module, most without torch

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


def timed(function: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """(median seconds over ``repeats`` calls, last result)."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# ---------------------------------------------------------------------------------------------
# running and printing


def parse_only(text: str | None) -> list[str]:
    """``"a,d"`` or ``"clip,topk"`` -> ``["a", "d"]`` (letters, in run order); None or empty
    -> every section."""
    entries = section_entries()
    if not text:
        return [entry.letter for entry in entries]
    by_name = {entry.name: entry.letter for entry in entries}
    by_name.update({entry.letter: entry.letter for entry in entries})
    wanted = {part.strip().lower().replace("-", "_") for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(by_name))
    if unknown:
        raise InputError(
            f"--only {text!r}: unknown sections {unknown}; choose from a-{entries[-1].letter} "
            f"or their names ({', '.join(entry.name for entry in entries)})"
        )
    letters = {by_name[part] for part in wanted}
    return [entry.letter for entry in entries if entry.letter in letters]


def run_perf(
    only: Sequence[str] | None = None,
    quick: bool = False,
    world: Path | None = None,
    progress: bool = True,
    command: str = "",
) -> PerfReport:
    """Run the chosen sections (letters; all by default) and return the report."""
    settings = PerfSettings.quick_settings() if quick else PerfSettings.full()
    letters = list(only) if only else list(section_letters())
    machine = machine_description()
    sections = []
    bar = tqdm(letters, desc="perf", unit="section", disable=not progress, file=sys.stderr)
    for letter in bar:
        bar.set_postfix_str(letter)
        start = time.perf_counter()
        section = _SECTIONS[letter].measure(settings, world)
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
