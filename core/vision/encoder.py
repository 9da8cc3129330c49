"""Images and text into the GeoCLIP location space (AG-CLIP paper, appendix A.10).

An image goes through CLIP ViT-L/14's image tower (``CLIPModel.get_image_features``: the
projected 768-d feature) and then GeoCLIP's image MLP (Linear 768→768, ReLU, Linear 768→512,
shipped in the geoclip wheel); text goes through CLIP's text tower (``get_text_features``,
768-d) and the *same* MLP. As in GeoCLIP, the CLIP features enter the MLP unnormalised and the
MLP output is L2-normalised, so that cosine similarity with the GeoCLIP location embeddings
ranks candidate places.

Images are preprocessed as GeoCLIP's training did (transformers' CLIP processor: bicubic
resize of the shorter side, centre crop, CLIP mean/std), with the PIL backend where
transformers has one. Text longer than CLIP's 77 tokens is truncated.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geoforensics.core.errors import InputError, MediaDecodeError, WeightsNotFoundError
from geoforensics.core.geoclip.location_encoder import (
    CLIP_FEATURE_DIM,
    EMBED_DIM,
    GeoCLIPImageMLP,
    load_image_mlp,
)
from geoforensics.core.vision.weights import find_clip_weights

if TYPE_CHECKING:
    from PIL import Image as PILImage


def _features(output: Any) -> torch.Tensor:
    """The projected CLIP feature from ``get_*_features`` in transformers 4.x (a tensor) and
    5.x (a model output whose ``pooler_output`` holds the projection)."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"unexpected CLIP feature output of type {type(output).__name__}")


def to_pil_image(image: Any, name: str = "image") -> PILImage.Image:
    """An RGB PIL image from a PIL image or an array: (H, W) grey, (H, W, 1|3|4) channels,
    uint8 or float in [0, 1]. Raises InputError for anything else."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: expected a numpy array or a PIL image, got {type(image)}")
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"{name}: expected an (H, W) or (H, W, 3|4) array, got {image.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name}: empty image {image.shape}")
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
            raise InputError(f"{name}: float pixels must be finite and lie in [0, 1]")
        pixels = np.round(array.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise InputError(f"{name}: pixels must be uint8 or float in [0, 1], got {array.dtype}")
    # uint8 (H, W), (H, W, 3) and (H, W, 4) arrays open as L, RGB and RGBA images.
    return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")


def load_image(path: str | os.PathLike[str]) -> PILImage.Image:
    """An RGB image read from a file, turned upright by its EXIF orientation.

    Memory stays bounded: CLIP sees 224 px, so an image whose shorter side exceeds twice
    :data:`_SHORT_SIDE` px is reduced (a JPEG decoded at a smaller DCT scale, others box-reduced
    by a whole factor) to a shorter side of at least that; an image of more than
    :data:`MAX_IMAGE_PIXELS` pixels (after the JPEG scaling), or one whose header claims a size
    PIL refuses as a decompression bomb, raises :class:`InputError` naming the file instead.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such image file")
    try:
        with warnings.catch_warnings():
            # PIL warns above its own limit; the size check below decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as handle:
                if handle.format == "JPEG":
                    handle.draft("RGB", (_SHORT_SIDE, _SHORT_SIDE))
                width, height = handle.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InputError(_too_large(source, width, height))
                handle.load()
                upright = ImageOps.exif_transpose(handle)
                picture = upright if upright is not None else handle
                factor = min(picture.size) // _SHORT_SIDE
                if factor >= 2:
                    picture = picture.reduce(factor)
                return picture.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise InputError(f"{source}: image too large to decode ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaDecodeError(f"{source}: not a readable image ({exc})") from exc


#: Largest image :func:`load_image` decodes (100 MP: about 300 MB as RGB).
MAX_IMAGE_PIXELS = 100_000_000
#: Shorter side kept when a large image is reduced (CLIP resizes it to 224 px afterwards).
_SHORT_SIDE = 2048


def _too_large(source: Path, width: int, height: int) -> str:
    return (
        f"{source}: image is {width} x {height} pixels ({width * height / 1e6:.0f} MP), more "
        f"than the {MAX_IMAGE_PIXELS / 1e6:.0f} MP this tool decodes (a decompression bomb?); "
        "scale it down first"
    )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bars and info logs for one block."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _clip_classes() -> tuple[Any, Any, Any]:
    """(model, tokenizer, image processor) classes: the tokenizers-backed tokenizer and the PIL
    image processor, whichever names this transformers version gives them."""
    import transformers

    tokenizer = getattr(transformers, "CLIPTokenizerFast", None) or transformers.CLIPTokenizer
    processor = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )
    return transformers.CLIPModel, tokenizer, processor


class GeoImageTextEncoder:
    """CLIP's image and text towers followed by GeoCLIP's image MLP, frozen in eval mode.

    ``source`` is the folder the CLIP weights came from. Outputs are (N, 512) float32 unit
    vectors in the GeoCLIP location space.
    """

    def __init__(
        self,
        clip_model: Any,
        tokenizer: Any,
        image_processor: Any,
        mlp: GeoCLIPImageMLP,
        source: str,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.clip = clip_model.float().to(self.device).eval().requires_grad_(False)
        self.mlp = mlp.to(self.device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.source = source
        self.max_text_tokens = int(clip_model.config.text_config.max_position_embeddings)

    def _project(self, features: torch.Tensor) -> np.ndarray:
        out = torch.nn.functional.normalize(self.mlp(features.float()), dim=1)
        return out.cpu().numpy().astype(np.float32, copy=False)

    @staticmethod
    def _check_batch_size(batch_size: int) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")

    def embed_images(self, images: Sequence[Any], batch_size: int = 8) -> np.ndarray:
        """(N, 512) float32 L2-normalised location-space embeddings of images (arrays or PIL;
        any size: the processor resizes and centre-crops)."""
        self._check_batch_size(batch_size)
        pil = [to_pil_image(image, f"image {i}") for i, image in enumerate(images)]
        out = np.empty((len(pil), EMBED_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pil), batch_size):
                chunk = pil[start : start + batch_size]
                pixels = self.image_processor(images=chunk, return_tensors="pt")["pixel_values"]
                output = self.clip.get_image_features(pixel_values=pixels.to(self.device))
                out[start : start + len(chunk)] = self._project(_features(output))
        return out

    def embed_texts(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(N, 512) float32 L2-normalised location-space embeddings of texts (CLIP's text tower
        through the image MLP; longer texts are cut at CLIP's 77 tokens)."""
        self._check_batch_size(batch_size)
        if isinstance(texts, str):
            raise InputError("texts: give a sequence of strings, not one string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise InputError(f"text {i}: expected a string, got {type(text).__name__}")
        out = np.empty((len(items), EMBED_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                tokens = self.tokenizer(
                    chunk,
                    padding=True,
                    truncation=True,
                    max_length=self.max_text_tokens,
                    return_tensors="pt",
                )
                output = self.clip.get_text_features(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device),
                )
                out[start : start + len(chunk)] = self._project(_features(output))
        return out


def load_geo_image_text_encoder(
    clip: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> GeoImageTextEncoder:
    """CLIP ViT-L/14 from :func:`find_clip_weights` (offline, safetensors only) plus GeoCLIP's
    image MLP from the geoclip wheel. Raises WeightsNotFoundError when CLIP is absent."""
    folder = find_clip_weights(clip)
    model_cls, tokenizer_cls, processor_cls = _clip_classes()
    try:
        with _quiet_transformers():
            model = model_cls.from_pretrained(folder, local_files_only=True, use_safetensors=True)
            tokenizer = tokenizer_cls.from_pretrained(folder, local_files_only=True)
            processor = processor_cls.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsNotFoundError(
            f"{folder}: CLIP weights could not be loaded ({type(exc).__name__}: {exc})"
        ) from exc
    projection = int(model.config.projection_dim)
    if projection != CLIP_FEATURE_DIM:
        raise WeightsNotFoundError(
            f"{folder}: CLIP projection width {projection}, but GeoCLIP's MLP needs "
            f"{CLIP_FEATURE_DIM} (CLIP ViT-L/14)"
        )
    mlp = load_image_mlp()
    return GeoImageTextEncoder(model, tokenizer, processor, mlp, str(folder), device)
