"""Paper Table 1 "Retrieve" rows with off-the-shelf models (their own audio and location
encoders, nothing trained here).

``geoclap``
    GeoCLAP's CLAP audio tower (``MVRL/geoclap-sentinel-best-ckpt``) embeds each whole test
    recording; its satellite-image encoder embeds a user's aerial tile of each candidate place
    (``DATA/aerial_tiles`` or ``$GEOFORENSICS_GEOCLAP_TILES``: ``tiles.csv`` with
    ``latitude,longitude,file`` + the images); the place of the most similar tile is the
    prediction, so the gallery is the tiles' places, not the bench gallery. Weights:
    ``$GEOFORENSICS_GEOCLAP`` (:mod:`geoforensics.core.models.geoclap`). Unavailable without
    tiles or weights. Paper: 6,856 km median; 0.2 / 1.3 / 7.0 / 24.9 %.
``taxabind``
    TaxaBind's CLAP audio tower (``MVRL/ecosound``) embeds each whole test recording (48 kHz
    mono, 10 s inputs, repeat padding, CLAP fusion; :mod:`geoforensics.core.models.clap`);
    TaxaBind's location encoder (``MVRL/ecogeo``) embeds the bench gallery; the most similar
    gallery place (cosine, top-1) is the prediction. The weights come from
    ``$GEOFORENSICS_TAXABIND`` or the Hugging Face cache (:mod:`geoforensics.core.models.taxabind`);
    without them the row is unavailable and says how to get them. Their SHA-256 are part of
    the resume check. Paper (iNatSounds test): 4,944 km median; 0.4 / 2.2 / 11.9 / 35.3 % at
    25 / 200 / 750 / 2,500 km.
``taxabind-xcdc``
    the same over the XCDC dawn choruses (Table 3 left); nothing trains, so it runs from an
    XCDC folder alone (it needs the choruses' audio).

:data:`WEIGHTS_CHECKS` maps these rows to a data-independent availability check, so that
``geoforensics bench --list-rows`` can say which are unavailable and the command that fixes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from geoforensics.core.errors import InputError, WeightsNotFoundError
from geoforensics.core.models.geoclap import (
    GeoCLAP,
    find_geoclap_weights,
    find_tiles,
    load_geoclap,
    read_tiles,
)
from geoforensics.core.models.taxabind import (
    TaxaBind,
    file_sha256,
    find_taxabind_weights,
    load_taxabind,
)
from geoforensics.eval.results import RowResult
from geoforensics.eval.rows.base import BenchData, BenchRow, RowContext, no_xcdc, register_row

#: Paper Table 1 numbers of the off-the-shelf rows (median km; % within 25/200/750/2,500 km).
PAPER_NUMBERS: dict[str, tuple[float, tuple[float, float, float, float]]] = {
    "taxabind": (4944.0, (0.4, 2.2, 11.9, 35.3)),
    "geoclap": (6856.0, (0.2, 1.3, 7.0, 24.9)),
}
#: The command that makes the TaxaBind row available.
TAXABIND_FIX = (
    "geoforensics weights download taxabind  (needs internet; or export "
    "GEOFORENSICS_TAXABIND=FOLDER with ecosound/ and ecogeo/)"
)


def taxabind_unavailable(data: BenchData | None = None) -> str | None:
    """Why the ``taxabind`` row cannot run (None when the weights are found)."""
    try:
        find_taxabind_weights()
    except WeightsNotFoundError:
        return f"no TaxaBind weights; run: {TAXABIND_FIX}"
    return None


GEOCLAP_FIX = (
    "export GEOFORENSICS_GEOCLAP=FOLDER (sat_encoder.safetensors + audio/) and put aerial tiles "
    "in DATA/aerial_tiles (tiles.csv: latitude,longitude,file) or export "
    "GEOFORENSICS_GEOCLAP_TILES=FOLDER"
)


def taxabind_xcdc_unavailable(data: BenchData) -> str | None:
    """Why ``taxabind-xcdc`` cannot run: weights, XCDC data or chorus audio."""
    reason = no_xcdc(data) or taxabind_unavailable(data)
    if reason is not None:
        return reason
    missing = len(data.xcdc) - data.xcdc.n_with_audio
    if missing:
        return f"{missing} of {len(data.xcdc)} XCDC recordings have no audio (TaxaBind needs it)"
    return None


def _geoclap_weights_unavailable() -> str | None:
    try:
        find_geoclap_weights()
    except WeightsNotFoundError:
        return f"no GeoCLAP weights (its satellite encoder is not on the hub); {GEOCLAP_FIX}"
    return None


def geoclap_unavailable(data: BenchData) -> str | None:
    """Why the ``geoclap`` row cannot run: weights, or aerial tiles for this data set."""
    reason = _geoclap_weights_unavailable()
    if reason is not None:
        return reason
    try:
        find_tiles(data.root)
    except InputError as exc:
        return f"no aerial tiles: {exc}"
    return None


def _geoclap_inputs(data: BenchData) -> dict[str, Any] | None:
    try:
        files = find_geoclap_weights()
        tiles = read_tiles(find_tiles(data.root))
    except (WeightsNotFoundError, InputError):
        return None
    return {
        "audio_sha256": file_sha256(files.audio / "model.safetensors"),
        "sat_sha256": file_sha256(files.sat),
        "tiles": tiles.identity(),
    }


def _run_geoclap(context: RowContext) -> RowResult:
    """Embed every test recording with GeoCLAP's audio tower and retrieve the place of the
    most similar aerial tile."""
    data = context.data
    model: GeoCLAP = data.memo(("geoclap-model",), load_geoclap)
    tiles = read_tiles(find_tiles(data.root))
    index = data.memo(("geoclap-index", str(tiles.folder)), lambda: model.retrieval_index(tiles))
    recordings = data.split("test")
    started = time.perf_counter()
    bar = tqdm(recordings, desc="geoclap", unit="rec", disable=not data.progress, leave=False)
    embeddings = np.stack([model.embed_file(recording.path) for recording in bar])
    top = index.search(embeddings, k=1)
    extra = {
        "audio_folder": str(model.files.audio),
        "sat_weights": str(model.files.sat),
        "tiles": str(tiles.folder),
        "gallery": "aerial tiles",
        "gallery_size": len(index),
        "embed_seconds": round(time.perf_counter() - started, 3),
    }
    return context.make_result(top.coords[:, 0, :], extra, {"embeddings": embeddings})


#: Rows whose availability depends only on installed weights (``bench --list-rows``).
WEIGHTS_CHECKS: dict[str, Callable[[], str | None]] = {
    "taxabind": taxabind_unavailable,
    "taxabind-xcdc": taxabind_unavailable,
    "geoclap": _geoclap_weights_unavailable,
}


def _taxabind_inputs(data: BenchData) -> dict[str, Any] | None:
    try:
        files = find_taxabind_weights()
    except WeightsNotFoundError:
        return None
    identity: dict[str, Any] = data.memo(("taxabind-identity", str(files.audio)), files.identity)
    return identity


def _run_taxabind(context: RowContext) -> RowResult:
    """Embed every recording of the row's split (test or XCDC) with TaxaBind's audio tower and
    retrieve the most similar bench-gallery place in TaxaBind's location space."""
    data = context.data
    model: TaxaBind = data.memo(("taxabind-model",), load_taxabind)
    index = data.memo(
        ("taxabind-index", *data.gallery_specs),
        lambda: model.retrieval_index(data.gallery.coords),
    )
    recordings = list(data.xcdc) if context.row.split == "xcdc" else data.split("test")
    started = time.perf_counter()
    bar = tqdm(recordings, desc="taxabind", unit="rec", disable=not data.progress, leave=False)
    embeddings = np.stack([model.embed_file(recording.path) for recording in bar])
    seconds = time.perf_counter() - started
    top = index.search(embeddings, k=1)
    extra = {
        "weights": model.files.source,
        "audio_folder": str(model.files.audio),
        "location_folder": str(model.files.location),
        **model.files.identity(),
        "gallery": data.gallery.name,
        "gallery_size": len(index),
        "embed_dim": model.embed_dim,
        "fusion": model.audio.fusion,
        "embed_seconds": round(seconds, 3),
    }
    return context.make_result(top.coords[:, 0, :], extra, {"embeddings": embeddings})


register_row(
    BenchRow(
        name="geoclap",
        label="Retrieve (GeoCLAP, off the shelf)",
        table="T1",
        run=_run_geoclap,
        description=(
            "GeoCLAP's CLAP audio tower -> place of the most similar aerial tile embedded "
            "by its satellite encoder (user tiles; nothing trained)"
        ),
        unavailable=geoclap_unavailable,
        inputs=_geoclap_inputs,
    ),
)
register_row(
    BenchRow(
        name="taxabind",
        label="Retrieve (TaxaBind, off the shelf)",
        table="T1",
        run=_run_taxabind,
        uses_gallery=True,
        description=(
            "TaxaBind's CLAP audio tower -> nearest bench-gallery place in TaxaBind's "
            "location space (MVRL/ecosound + MVRL/ecogeo; nothing trained)"
        ),
        unavailable=taxabind_unavailable,
        inputs=_taxabind_inputs,
    ),
)
register_row(
    BenchRow(
        name="taxabind-xcdc",
        label="Retrieve (TaxaBind, off the shelf)",
        table="T3",
        split="xcdc",
        run=_run_taxabind,
        uses_gallery=True,
        description="the taxabind row over the XCDC dawn choruses (nothing trained)",
        unavailable=taxabind_xcdc_unavailable,
        inputs=_taxabind_inputs,
        xcdc_only=True,
    ),
)
