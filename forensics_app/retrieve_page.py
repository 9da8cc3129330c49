"""Retrieve page: cross-modal retrieval in the shared GeoCLIP space, and species soundscapes.

- Audio → text: countries ranked by how well "a sound recorded in {country}" (CLIP's text
  tower + GeoCLIP's MLP) matches the AG-CLIP embedding of the audio
  (:func:`geoforensics.core.multimodal.rank_countries`);
- Audio → images: uploaded images ranked the same way (CLIP's image tower + the MLP);
- Species soundscape map (paper A.11): the mean AG-CLIP embedding of one species'
  recordings against every gallery location's embedding
  (:func:`geoforensics.core.multimodal.species_soundscape`), drawn as hexagons.

The first two need CLIP ViT-L/14 weights; without them the page says how to get them and the
soundscape map still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.multimodal import (
    DEFAULT_COUNTRY_TEMPLATE,
    SpeciesSoundscape,
    audio_embedding,
    check_geoclip_space,
    rank_by_similarity,
    rank_countries,
    species_counts,
    species_soundscape,
)
from geoforensics.core.vision import load_image
from geoforensics.forensics_app import common
from geoforensics.forensics_app.maps import MapPoint, build_deck, heat_cells

AUDIO_SOURCES = ("Demo soundscape", "Upload audio")


def _audio_query(model_dir: str) -> tuple[np.ndarray, str] | None:
    """The AG-CLIP embedding of the chosen audio (kept in the session), or None."""

    source = st.radio("Query audio", AUDIO_SOURCES, horizontal=True, key="retrieve_source")
    upload = None
    if source == AUDIO_SOURCES[1]:
        upload = st.file_uploader(
            "Audio file", type=list(common.AUDIO_TYPES), key="retrieve_upload"
        )
    if st.button("Embed the audio", key="retrieve_embed"):
        check_geoclip_space(model_dir)
        model = common.agclip_model(model_dir)
        if source == AUDIO_SOURCES[0]:
            path = common.demo_audio_path()
            st.session_state["retrieve_query"] = (audio_embedding(model, path), path.name)
        elif upload is None:
            st.warning("Choose an audio file to upload first.")
        else:
            with common.private_copies([upload], expect="audio") as (path,):
                st.session_state["retrieve_query"] = (audio_embedding(model, path), upload.name)
    query: tuple[np.ndarray, str] | None = st.session_state.get("retrieve_query")
    if query is not None:
        st.caption(f"Query: AG-CLIP embedding of `{query[1]}` ({query[0].size}-d, unit length)")
    return query


def _ranked_frame(ranked: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rank": r.rank,
                "match": r.label,
                "key": r.key,
                "cosine": round(r.score, 4),
                "probability": round(r.probability, 4),
            }
            for r in ranked
        ]
    )


def _text_and_images(query: tuple[np.ndarray, str] | None) -> None:

    clip = common.clip_folder(", so audio → text and audio → image retrieval are off")
    if clip is None:
        return
    tab_text, tab_images = st.tabs(["Audio → country names", "Audio → images"])
    with tab_text:
        template = st.text_input("Prompt", value=DEFAULT_COUNTRY_TEMPLATE, key="retrieve_template")
        top = int(st.number_input("Countries listed", 1, 50, 15, key="retrieve_top_countries"))
        if query is None:
            st.info("Embed an audio query first.")
        else:
            embeddings = common.country_embeddings(clip, template)
            ranked = rank_countries(
                query[0], template=template, text_embeddings=embeddings, top_k=top
            )
            st.dataframe(_ranked_frame(ranked), hide_index=True, width="stretch")
    with tab_images:
        images = st.file_uploader(
            "Images to rank",
            type=list(common.IMAGE_TYPES),
            accept_multiple_files=True,
            key="retrieve_images",
        )
        if query is None:
            st.info("Embed an audio query first.")
        elif images:
            with common.private_copies(images, expect="image") as paths:
                pictures = [load_image(p) for p in paths]
            embeddings = common.clip_encoder(clip).embed_images(pictures)
            names = [image.name for image in images]
            ranked = rank_by_similarity(query[0], embeddings, names)
            st.dataframe(_ranked_frame(ranked), hide_index=True, width="stretch")
            order = [names.index(r.key) for r in ranked]
            st.image(
                [pictures[i] for i in order],
                caption=[f"#{r.rank} {r.label}" for r in ranked],
                width=180,
            )


def _soundscape(model_dir: str, gallery: str) -> None:

    st.subheader("Species soundscape map")
    st.caption(
        "Paper A.11: the mean AG-CLIP embedding of a species' recordings compared with the "
        "embedding of every gallery location: where does this species' soundscape belong?"
    )
    default = common.default_world_dir()
    root = st.text_input(
        "Data folder (iNatSounds format)", value=str(default), key="retrieve_world"
    ).strip()
    if not (Path(root) / "train.json").is_file():
        if Path(root) == default:
            st.info(
                "The tiny SYNTHETIC demo world is not generated yet (seed 0: about 300 "
                "recordings, 115 MB in the cache, 10-30 s)."
            )
            if st.button("Generate the demo world", key="retrieve_generate"):
                common.demo_world(root)
                st.rerun()
        else:
            st.warning(f"{root}: no train.json there (an iNatSounds-format folder is needed)")
        return
    counts = species_counts(root)
    labels = {name: f"{name} ({n} recordings)" for name, n in counts}
    species = st.selectbox(
        "Species",
        [name for name, _n in counts],
        format_func=labels.__getitem__,
        key="retrieve_species",
    )
    limit = int(st.number_input("Recordings used at most", 1, 500, 32, key="retrieve_limit"))
    if st.button("Draw the soundscape map", type="primary", key="retrieve_draw"):
        bar = st.progress(0.0, text="Embedding the recordings ...")

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(1.0, fraction), text=message)

        st.session_state["retrieve_soundscape"] = species_soundscape(
            common.agclip_model(model_dir),
            common.model_index(model_dir, gallery),
            root,
            species,
            max_recordings=limit,
            progress=progress,
        )
    result: SpeciesSoundscape | None = st.session_state.get("retrieve_soundscape")
    if result is None:
        return
    heat = heat_cells(result.coords, result.probs, common.HEX_RES)
    points = [
        MapPoint("metadata_gps", float(lat), float(lon), f"a recording of {result.species}", 2)
        for lat, lon in result.recording_coords
    ]
    peak = result.peak
    points.append(MapPoint("audio", peak[0], peak[1], "highest affinity", 1))
    st.pydeck_chart(build_deck(heat, points), height=460, key="retrieve_map")
    st.caption(
        f"{result.species}: mean embedding of {result.n_recordings} recordings. Hexagons: "
        "softmax(39.7 × cosine similarity) with each location, summed per H3 cell, on a log "
        "scale over three decades (darker = higher); green dots: where the recordings "
        f"were made; orange: the highest affinity ({peak[0]:.1f}, {peak[1]:.1f})."
    )


def render() -> None:
    """The page."""
    st.title("Retrieve")
    st.caption("Audio, text, images and places share one embedding space (GeoCLIP's).")
    with st.expander("Settings"):
        a, b = st.columns(2)
        model_dir = a.text_input(
            "AG-CLIP model folder", value=str(common.default_model_dir()), key="retrieve_model"
        )
        gallery = b.text_input("Gallery", value=common.default_gallery(), key="retrieve_gallery")
    try:
        query = _audio_query(model_dir)
        _text_and_images(query)
    except WeightsNotFoundError as exc:
        st.warning(str(exc))
    except Exception as exc:
        common.show_error(exc)
    try:
        _soundscape(model_dir, gallery)
    except Exception as exc:
        common.show_error(exc)


if __name__ == "__main__":
    render()
