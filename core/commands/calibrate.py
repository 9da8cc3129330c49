"""`geoforensics calibrate`: conformal thresholds for calibrated confidence regions.

geoforensics calibrate MODEL --data ROOT [--split val] [--gallery SPEC] [--levels 50,80,90,95]
                       [--res 3] [--max-km KM] [--json]
geoforensics calibrate --species --data XCDC_DIR --range-model SPEC --out FILE
                       [--likelihood MODEL] [--week known|unknown|both] [--draws 20]
                       [--false-species 1] [--seed 0] [--gallery SPEC] ...

With MODEL (an AG-CLIP model folder): the model's validation split (``ROOT/val.json``, its
audio) is located over the gallery, each recording's distribution scored against its true
place (:mod:`geoforensics.core.geo.calibration`), and the thresholds saved beside the model
as ``MODEL/calibration.json`` (one entry per gallery; written atomically). ``locate --method
agclip`` then prints calibrated regions for that gallery.

With ``--species``: species lists with true places in the XCDC format
(``xcdc_recordings.csv``: ``all_scientific`` and the coordinates; the synthetic world's
choruses, or your own CSV) are scored with the species-range likelihood, as ``locate
--species`` does. Each chorus gives ``--draws`` lists: a random number of its true species
(1 to all) plus ``--false-species`` species it does not hold (false detections). One entry
per setting (range model, likelihood, week known or not, gallery, area prior) goes into
``--out``; pass it to ``locate --calibration FILE``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from geoforensics.core.errors import InputError

#: Default number of species lists drawn per chorus.
DEFAULT_DRAWS = 20
#: Recordings whose distributions over the gallery are held in memory at once.
CHUNK = 256


def _levels(text: str) -> tuple[float, ...]:
    from geoforensics.core.geo.regions import DEFAULT_LEVELS

    if not text:
        return DEFAULT_LEVELS
    out = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise InputError(f"--levels {text!r}: use percentages such as 50,80,90,95") from None
        value = value / 100.0 if value > 1.0 else value
        if not 0.0 < value < 1.0:
            raise InputError(f"--levels {text!r}: each level must be in (0, 100) %")
        out.append(value)
    return tuple(out)


def _summary_rows(calibration: Any) -> list[str]:
    lines = []
    for level, value in sorted(calibration.thresholds.items()):
        raw = calibration.coverage_at_raw.get(level)
        raw_text = "" if raw is None else f"; raw mass {level:.0%} covered {raw:.1%}"
        t_text = "all covered cells" if not np.isfinite(value) else f"mass {value:.4f}"
        lines.append(f"  {level:.0%} region: grow to {t_text}{raw_text}")
    return lines


def _report(args: argparse.Namespace, entries: list[Any], path: Path) -> None:
    if args.json:
        print(json.dumps({"file": str(path), "entries": [e.as_dict() for e in entries]}, indent=2))
        return
    for entry in entries:
        print(entry.describe())
        print("\n".join(_summary_rows(entry)))
    print(f"calibration -> {path}")


def _model_calibration(args: argparse.Namespace) -> int:
    """AG-CLIP: the validation split's distributions over the gallery."""
    from geoforensics.core.data import INatSounds
    from geoforensics.core.geo.calibration import (
        CALIBRATION_FILE,
        agclip_setting,
        calibrate,
        conformal_scores,
        save_calibration,
    )
    from geoforensics.core.geo.distance import validate_coords
    from geoforensics.core.geo.gallery import gallery_log_prior, resolve_gallery
    from geoforensics.core.geo.regions import RegionGrid
    from geoforensics.core.models import load_model
    from geoforensics.core.models.audio_places import place_log_probs
    from geoforensics.core.models.inference import iter_pooled_outputs
    from geoforensics.core.models.model_space import retrieval_index_for_model
    from geoforensics.core.models.resolve import resolve_audio_model

    model_dir = Path(resolve_audio_model(args.model))
    model = load_model(model_dir)
    if model.kind != "agclip":
        raise InputError(f"{args.model}: a {model.kind!r} model; calibrate needs an AG-CLIP model")
    split = INatSounds(args.data, args.split)
    truth = split.coords()
    keep = np.flatnonzero(validate_coords(truth))
    if keep.size < 2:
        raise InputError(f"{args.data}: {args.split} split has {keep.size} recordings with a place")
    recordings = [split[int(i)] for i in keep]
    gallery = resolve_gallery(args.gallery)
    index = retrieval_index_for_model(model_dir, gallery)
    pooled = list(iter_pooled_outputs(model, recordings, batch_size=args.batch_size))
    embeddings = np.stack([p["embedding"] for p in pooled if p is not None]).astype(np.float32)
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    if len(embeddings) != keep.size:
        raise InputError(f"{args.data}: {keep.size - len(embeddings)} recordings could not be read")
    grid = RegionGrid.build(gallery.coords, args.res, args.max_km)
    log_prior = gallery_log_prior(gallery)  # the prior of every AG-CLIP distribution
    places = truth[keep]
    parts = []
    for start in range(0, len(embeddings), CHUNK):  # (chunk, gallery) at a time
        cosine = np.clip(index.scores(embeddings[start : start + CHUNK]), -1.0, 1.0)
        probs = np.exp(place_log_probs(cosine.astype(np.float64), log_prior))
        parts.append(conformal_scores(grid, probs, places[start : start + CHUNK]))
    scores = np.concatenate(parts)
    entry = calibrate(
        "agclip",
        agclip_setting(gallery.name, gallery.coords),
        grid,
        scores,
        _levels(args.levels),
        data=f"{Path(args.data).name} {args.split} split",
    )
    path = save_calibration(model_dir / CALIBRATION_FILE, entry)
    _report(args, [entry], path)
    return 0


def _species_lists(
    records: list[Any], n_species: int, lookup: list[np.ndarray], args: argparse.Namespace
) -> list[tuple[int, np.ndarray]]:
    """(chorus index, range-model columns) of each drawn list: 1..all true species plus
    ``--false-species`` species the chorus does not hold."""
    rng = np.random.default_rng(args.seed)
    out = []
    for i, columns in enumerate(lookup):
        if columns.size == 0:
            continue
        others = np.setdiff1d(np.arange(n_species), columns)
        for _ in range(args.draws):
            k = int(rng.integers(1, columns.size + 1))
            chosen = rng.choice(columns, size=k, replace=False)
            n_false = min(args.false_species, others.size)
            false = rng.choice(others, size=n_false, replace=False) if n_false else []
            out.append((i, np.concatenate([chosen, np.asarray(false, np.int64)])))
    return out


def _species_calibration(args: argparse.Namespace) -> int:
    """Species range: XCDC-format species lists with true places."""
    from geoforensics.core.data import XCDC
    from geoforensics.core.geo.calibration import calibrate, save_calibration, species_setting
    from geoforensics.core.geo.gallery import effort_gallery_log_prior, resolve_gallery
    from geoforensics.core.geo.ranking import score_map
    from geoforensics.core.geo.regions import RegionGrid
    from geoforensics.core.species.checklists import YEAR_ROUND
    from geoforensics.core.species.likelihood import SpeciesLikelihood
    from geoforensics.core.species.names import match_species
    from geoforensics.core.species.range_table import range_table
    from geoforensics.core.species.ranges import load_range_model

    if args.out is None:
        raise InputError("calibrate --species: give --out FILE.json for the calibration")
    if args.range_model is None:
        raise InputError("calibrate --species: give --range-model SPEC (birdnet, world:DIR, ...)")
    if args.draws < 1 or args.false_species < 0:
        raise InputError("calibrate --species: --draws must be >= 1, --false-species >= 0")
    root = Path(args.data)
    folder = root if (root / "xcdc_recordings.csv").is_file() else root / "xcdc"
    records = list(XCDC(folder))
    range_model = load_range_model(args.range_model)
    species = list(range_model.species)
    names = sorted({n for r in records for n in r.all_scientific})
    match = match_species(names, species, getattr(range_model, "common_names", None))
    column = dict(zip(names, match.indices.tolist(), strict=True))
    lookup = [
        np.array(sorted({column[n] for n in r.all_scientific if column[n] >= 0}), np.int64)
        for r in records
    ]
    lists = _species_lists(records, len(species), lookup, args)
    if len(lists) < 2:
        raise InputError(f"{folder}: fewer than 2 choruses with species the range model knows")
    gallery = resolve_gallery(args.gallery)
    coords = gallery.coords
    # the prior `locate` and `check` put on the species posterior (area and effort on a
    # regular grid, none on a gallery of recording places): the calibration scores the same
    prior, use_area, effort_name = effort_gallery_log_prior(gallery)
    grid = RegionGrid.build(coords, args.res, args.max_km)
    truth = np.array([[records[i].latitude, records[i].longitude] for i, _ in lists])
    weeks_wanted = {"known": [True], "unknown": [False], "both": [True, False]}[args.week]
    entries = []
    path = Path(args.out)
    for week_known in weeks_wanted:
        tables: dict[int, SpeciesLikelihood] = {}
        scores = np.empty(len(lists))
        for row, (i, columns) in enumerate(lists):
            week = _record_week(records[i]) if week_known else YEAR_ROUND
            if week not in tables:
                tables[week] = SpeciesLikelihood(
                    range_table(range_model, coords, None if week == YEAR_ROUND else week),
                    model=args.likelihood,
                )
            loglik = tables[week].log_likelihood(columns, np.ones(columns.size))
            scores[row] = grid.scores(score_map(loglik + prior), truth[row])[0]
        entry = calibrate(
            "species-range",
            species_setting(
                args.range_model,
                args.likelihood,
                week_known,
                gallery.name,
                coords,
                use_area,
                effort_name,
            ),
            grid,
            scores,
            _levels(args.levels),
            data=(
                f"{len(lists)} species lists from {len(lookup)} XCDC-format choruses in "
                f"{folder} ({args.draws} draws, {args.false_species} false species each)"
            ),
        )
        save_calibration(path, entry)
        entries.append(entry)
    _report(args, entries, path)
    return 0


def _record_week(record: Any) -> int:
    from geoforensics.core.species.checklists import YEAR_ROUND, date_to_week

    if record.date is not None:
        return int(date_to_week(record.date))
    if record.month is not None and 1 <= int(record.month) <= 12:
        return (int(record.month) - 1) * 4 + 2
    return YEAR_ROUND


def run_calibrate(args: argparse.Namespace) -> int:
    """Handler of ``geoforensics calibrate``."""
    from geoforensics.core.geo.regions import REGION_RESOLUTIONS

    if args.res not in REGION_RESOLUTIONS:
        raise InputError(f"--res {args.res}: choose one of {REGION_RESOLUTIONS}")
    if args.species:
        if args.model is not None:
            raise InputError("calibrate: give MODEL or --species, not both")
        return _species_calibration(args)
    if args.model is None:
        raise InputError("calibrate: give MODEL (an AG-CLIP model folder) or --species")
    if args.out is not None:
        raise InputError("calibrate MODEL writes MODEL/calibration.json; --out is for --species")
    return _model_calibration(args)


def register(subparsers: Any) -> None:
    """Add the `calibrate` subcommand."""
    from geoforensics.core.species import likelihood

    default_likelihood = str(getattr(likelihood, "DEFAULT_LIKELIHOOD", "draw"))
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "calibrate",
        help="calibrate confidence regions on held-out data (split conformal)",
        description=(
            "Choose the mass each X % confidence region is grown to so that the true place "
            "falls inside with probability >= X (split-conformal calibration on held-out "
            "recordings or species lists with true places)."
        ),
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="an AG-CLIP model folder")
    parser.add_argument(
        "--data", required=True, metavar="ROOT",
        help="MODEL: an iNatSounds-format data set (its --split is used); --species: a folder "
        "with xcdc_recordings.csv (or ROOT/xcdc/)",
    )  # fmt: skip
    parser.add_argument("--split", default="val", help="MODEL: the held-out split (default val)")
    parser.add_argument(
        "--species", action="store_true", help="calibrate the species-range likelihood instead"
    )
    parser.add_argument("--range-model", metavar="SPEC", help="--species: the range model")
    parser.add_argument(
        "--likelihood", default=default_likelihood, choices=likelihood.LIKELIHOOD_MODELS,
        help=f"--species: the likelihood, as for locate (default {default_likelihood})",
    )  # fmt: skip
    parser.add_argument(
        "--week", default="both", choices=("known", "unknown", "both"),
        help="--species: calibrate with the recording week known, unknown, or both (default)",
    )  # fmt: skip
    parser.add_argument(
        "--draws", type=int, default=DEFAULT_DRAWS, metavar="N",
        help=f"--species: species lists drawn per chorus (default {DEFAULT_DRAWS})",
    )  # fmt: skip
    parser.add_argument(
        "--false-species", type=int, default=1, metavar="N",
        help="--species: false detections added to each list (default 1)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="--species: draw seed (default 0)")
    parser.add_argument("--out", metavar="FILE.json", help="--species: calibration file to write")
    parser.add_argument(
        "--gallery", default="land-1deg", metavar="SPEC",
        help="candidate locations, as for locate (default land-1deg)",
    )  # fmt: skip
    parser.add_argument(
        "--levels", default="", metavar="X,...",
        help="coverage levels in %% (default 50,80,90,95)",
    )  # fmt: skip
    parser.add_argument(
        "--res", type=int, default=3, metavar="R", help="H3 resolution of region cells (default 3)"
    )
    parser.add_argument(
        "--max-km", type=float, default=None, metavar="KM",
        help="reach of a gallery point (default: 3 x the gallery's 95th-percentile spacing, "
        "200-1,000 km)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, default=32, metavar="N", help="MODEL: inference batch size"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=run_calibrate)
