"""Tiny random TaxaBind towers written in the hub's file layout, for the tests of any folder
(``tests/core/models/test_taxabind.py``, the bench's XCDC rows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from geoforensics.core.models.taxabind import TaxaBindLocationEncoder


def tiny_clap_config(enable_fusion: bool = True) -> Any:
    """A small ``ClapAudioConfig`` with the real front-end geometry (64 mels, spec 256)."""
    from transformers import ClapAudioConfig

    return ClapAudioConfig(
        patch_embeds_hidden_size=8,
        hidden_size=16,
        depths=[1, 1],
        num_attention_heads=[1, 1],
        projection_dim=16,
        enable_fusion=enable_fusion,
        mlp_ratio=1.0,
        aff_block_r=2,
    )


def write_tiny_taxabind(folder: Path, enable_fusion: bool = True, seed: int = 0) -> Path:
    """``folder/ecosound`` (transformers' own save_pretrained: config.json + model.safetensors)
    and ``folder/ecogeo`` (the PyTorchModelHubMixin layout: config.json with sigma/dim/...
    + model.safetensors), randomly initialised, embedding width 16."""
    from safetensors.torch import save_file
    from transformers import ClapAudioModelWithProjection

    torch.manual_seed(seed)
    audio = ClapAudioModelWithProjection(tiny_clap_config(enable_fusion)).eval()
    audio.save_pretrained(folder / "ecosound")
    location = TaxaBindLocationEncoder(sigma=(1.0, 16.0, 256.0), encoded_size=8, dim=16)
    (folder / "ecogeo").mkdir(parents=True)
    state = {k: v.contiguous() for k, v in location.state_dict().items()}
    save_file(state, str(folder / "ecogeo" / "model.safetensors"))
    config = {"dim": 16, "encoded_size": 8, "input_size": 2, "sigma": [1, 16, 256]}
    (folder / "ecogeo" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder
