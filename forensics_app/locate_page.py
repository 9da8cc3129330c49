"""Locate page: audio, an image or a text → a heatmap over the gallery and the top-k places.

Audio goes through an AG-CLIP model (the shipped SYNTHETIC demo checkpoint by default, for
its synthetic demo soundscape; an uploaded recording's result says on its title line when
the model does not know real sound:
:func:`geoforensics.core.multimodal.locate_audio`, the one audio path of
``geoforensics locate --method agclip`` and ``check``);
images and text through CLIP ViT-L/14 + GeoCLIP's image MLP
(:func:`geoforensics.core.vision.geolocate_embeddings`), which needs the CLIP weights: when
they are absent the page says how to get them and audio keeps working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from geoforensics.core.errors import WeightsNotFoundError
from geoforensics.core.models.provenance import model_training_data
from geoforensics.core.multimodal import locate_audio, location_map
from geoforensics.core.vision import geolocate_embeddings, load_image
from geoforensics.forensics_app import common

MODES = ("Audio", "Image", "Text")
AUDIO_SOURCES = ("Demo soundscape", "Upload audio")


def _show(location: Any, modality: str, title: str) -> None:
    st.subheader(title)
    st.pydeck_chart(common.location_deck(location, modality), height=460, key="locate_map")
    st.caption(
        f"Hexagons: probability summed over H3 resolution-{common.HEX_RES} cells; markers: the "
        f"top-{len(location.top)} places, ranked by the probability within "
        f"{location.radius_km:g} km and at least that far apart. No basemap tiles; outlines "
        "from Natural Earth."
    )
    st.dataframe(common.top_table(location), hide_index=True, width="stretch")


def locate_audio_file(path: Path, model_dir: str, gallery: str, top_k: int) -> Any:
    """AG-CLIP location map of one audio file (models cached per process), through the one
    audio path ``locate --method agclip`` and ``check`` take (gallery prior included)."""

    model = common.agclip_model(model_dir)
    index = common.model_index(model_dir, gallery)
    return locate_audio(model, path, index, top_k, gallery=common.gallery(gallery))


def model_warning(model_dir: str) -> str | None:
    """What the AG-CLIP model folder's training data says it may not speak for (None for a
    model trained on real recordings), e.g. "trained on a SYNTHETIC world: not evidence for
    real recordings"; the page shows it beside every uploaded recording's result."""

    try:
        return model_training_data(model_dir).label()
    except Exception:  # an unreadable folder fails in loading, with its own message
        return None


def locate_embedding(embedding: Any, gallery: str, top_k: int) -> Any:
    """Location map of one GeoCLIP-space embedding (image or text)."""

    index = common.geoclip_index(gallery)
    log_probs = geolocate_embeddings(embedding, index)[0]
    return location_map(log_probs, index.coords, top_k)


def render() -> None:
    """The page."""
    st.title("Locate")
    st.caption("Where could this sound, picture or description come from?")
    mode = st.radio("Input", MODES, horizontal=True, key="locate_mode")
    with st.expander("Settings"):
        a, b, c = st.columns(3)
        model_dir = a.text_input(
            "AG-CLIP model folder", value=str(common.default_model_dir()), key="locate_model"
        )
        gallery = b.text_input("Gallery", value=common.default_gallery(), key="locate_gallery")
        top_k = int(c.number_input("Top-k places", 1, 20, 5, key="locate_top_k"))
    try:
        if mode == "Audio":
            source = st.radio("Audio", AUDIO_SOURCES, horizontal=True, key="locate_audio_source")
            upload = None
            if source == AUDIO_SOURCES[1]:
                upload = st.file_uploader(
                    "Audio file", type=list(common.AUDIO_TYPES), key="locate_audio_upload"
                )
            if st.button("Locate the audio", type="primary", key="locate_audio_run"):
                if source == AUDIO_SOURCES[0]:
                    path = common.demo_audio_path()
                    result = locate_audio_file(path, model_dir, gallery, top_k)
                    st.session_state["locate_result"] = (result, "audio", f"AG-CLIP: {path.name}")
                elif upload is None:
                    st.warning("Choose an audio file to upload first.")
                else:
                    with common.private_copies([upload], expect="audio") as (path,):
                        result = locate_audio_file(path, model_dir, gallery, top_k)
                    warning = model_warning(model_dir)
                    title = f"AG-CLIP: {upload.name}"
                    if warning:
                        title += f" (model {warning})"
                    st.session_state["locate_result"] = (result, "audio", title)
        elif mode == "Image":
            clip = common.clip_folder()
            if clip is not None:
                image = st.file_uploader(
                    "Image", type=list(common.IMAGE_TYPES), key="locate_image_upload"
                )
                if image is not None and st.button(
                    "Locate the image", type="primary", key="locate_image_run"
                ):
                    with common.private_copies([image], expect="image") as (path,):
                        picture = load_image(path)
                    st.image(picture, caption=image.name, width=320)
                    embedding = common.clip_encoder(clip).embed_images([picture])
                    result = locate_embedding(embedding, gallery, top_k)
                    st.session_state["locate_result"] = (
                        result,
                        "frames",
                        f"GeoCLIP image: {image.name}",
                    )
        else:
            clip = common.clip_folder()
            if clip is not None:
                text = st.text_input(
                    "Text", value="a dawn chorus in a tropical rainforest", key="locate_text"
                )
                if st.button("Locate the text", type="primary", key="locate_text_run"):
                    embedding = common.clip_encoder(clip).embed_texts([text])
                    result = locate_embedding(embedding, gallery, top_k)
                    st.session_state["locate_result"] = (result, "text", f"CLIP text: “{text}”")
    except WeightsNotFoundError as exc:
        st.warning(str(exc))
    except Exception as exc:
        common.show_error(exc)
    stored = st.session_state.get("locate_result")
    if stored is not None:
        location, modality, title = stored
        if "not evidence for real recordings" in title:
            st.warning(title)
        _show(location, modality, title)


if __name__ == "__main__":
    render()
