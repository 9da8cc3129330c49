"""Image and text geolocation in the GeoCLIP location space (AG-CLIP paper, appendix A.10).

- :mod:`.weights`: where CLIP ViT-L/14 is (explicit folder, ``$GEOFORENSICS_CLIP``, the
  Hugging Face cache; never the network), the status of every weight set, and the one
  download the product does (``geoforensics weights download clip``).
- :mod:`.encoder`: :class:`GeoImageTextEncoder`, CLIP's image and text towers followed by
  GeoCLIP's image MLP from the geoclip wheel: (N, 512) unit vectors in the location space.
- :mod:`.geolocate`: log-probabilities over a gallery (GeoCLIP's temperature and softmax) and
  :func:`locate_image` / :func:`locate_text` giving the top-k (latitude, longitude, probability).

Names are imported lazily, so ``import geoforensics.core.vision`` loads neither torch nor
transformers, and nothing is downloaded at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoforensics.core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from geoforensics.core.vision.encoder import (
        GeoImageTextEncoder,
        load_geo_image_text_encoder,
        load_image,
    )
    from geoforensics.core.vision.geolocate import (
        DEFAULT_GALLERY,
        MediaLocation,
        TopPlace,
        gallery_index,
        geolocate_embeddings,
        locate_image,
        locate_images,
        locate_text,
        shared_encoder,
    )
    from geoforensics.core.vision.weights import (
        CLIP_HUB_ID,
        WeightsStatus,
        all_weights_status,
        clip_weights_status,
        download_clip,
        find_clip_weights,
    )

_EXPORTS = {
    "CLIP_HUB_ID": "weights",
    "WeightsStatus": "weights",
    "all_weights_status": "weights",
    "clip_weights_status": "weights",
    "download_clip": "weights",
    "find_clip_weights": "weights",
    "GeoImageTextEncoder": "encoder",
    "load_geo_image_text_encoder": "encoder",
    "load_image": "encoder",
    "DEFAULT_GALLERY": "geolocate",
    "MediaLocation": "geolocate",
    "TopPlace": "geolocate",
    "gallery_index": "geolocate",
    "geolocate_embeddings": "geolocate",
    "locate_image": "geolocate",
    "locate_images": "geolocate",
    "locate_text": "geolocate",
    "shared_encoder": "geolocate",
}

__all__ = [
    "CLIP_HUB_ID",
    "DEFAULT_GALLERY",
    "GeoImageTextEncoder",
    "MediaLocation",
    "TopPlace",
    "WeightsStatus",
    "all_weights_status",
    "clip_weights_status",
    "download_clip",
    "find_clip_weights",
    "gallery_index",
    "geolocate_embeddings",
    "load_geo_image_text_encoder",
    "load_image",
    "locate_image",
    "locate_images",
    "locate_text",
    "shared_encoder",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
