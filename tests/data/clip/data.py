#!/usr/bin/env python3
"""Write a tiny random CLIP in Hugging Face format (seeded), a stand-in for CLIP ViT-L/14.

Same code path as the real model: a ``CLIPModel`` with tiny text and vision towers whose
projection is 768-d (so GeoCLIP's image MLP applies), a byte-level ``CLIPTokenizer`` (every
byte is a token, no merges) and a CLIP image processor for 32x32 inputs, all saved with
``save_pretrained`` (safetensors) so that they load offline. Tests call :func:`write_tiny_clip`;
run it to write one by hand::

    .venv/bin/python tests/data/clip/data.py FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

SEED = 1414
IMAGE_SIZE = 32
PATCH_SIZE = 8
PROJECTION_DIM = 768
MAX_TEXT_TOKENS = 77


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which CLIP's byte-level BPE uses."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def tiny_vocab() -> dict[str, int]:
    """Every byte as a word-inner and a word-final token, then CLIP's two special tokens."""
    chars = list(bytes_to_unicode().values())
    vocab = {char: i for i, char in enumerate(chars)}
    vocab.update({char + "</w>": len(chars) + i for i, char in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def write_tiny_clip(
    folder: str | Path, seed: int = SEED, projection_dim: int = PROJECTION_DIM
) -> Path:
    """Save a tiny random CLIP (model, tokenizer, image processor) into ``folder``.

    ``projection_dim`` other than 768 makes a CLIP that GeoCLIP's MLP cannot take (tests of
    the loader's check).
    """
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TEXT_TOKENS)
    processor_cls = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )
    processor = processor_cls(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = CLIPConfig(
        projection_dim=projection_dim,
        text_config={
            **tiny,
            "num_attention_heads": 2,
            "vocab_size": len(vocab),
            "max_position_embeddings": MAX_TEXT_TOKENS,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "projection_dim": projection_dim,
        },
        vision_config={
            **tiny,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "projection_dim": projection_dim,
        },
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    # Random init gives tiny features; scale the projections so the MLP sees CLIP-like sizes.
    with torch.no_grad():
        model.visual_projection.weight.mul_(20.0)
        model.text_projection.weight.mul_(20.0)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out, safe_serialization=True)
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: data.py FOLDER")
    print(write_tiny_clip(sys.argv[1]))
