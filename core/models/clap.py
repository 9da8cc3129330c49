"""CLAP's audio tower (HTSAT + projection, transformers' ``ClapAudioModelWithProjection``) and
its own front-end, loaded offline from a folder in the Hugging Face hub's layout.

Front-end (what ``ClapFeatureExtractor`` computes with the LAION preprocessor settings, written
here in numpy so that it is ours and tested against transformers on fixed signals):

* mono waveform at 48 kHz; inputs of ``max_length_s`` = 10 s (480,000 samples);
* a shorter recording is *repeat-padded*: tiled ``floor(480000 / n)`` times, then zero-padded
  to 10 s (``padding="repeatpad"``);
* power spectrogram: periodic Hann window 1,024, hop 480, centred frames (reflect padding of
  512 samples) -> 1,001 frames; 64 mel bands over 50-14,000 Hz; ``10·log10(max(1e-10, ·))``
  (no top-dB clipping);
* ``truncation="fusion"`` (models with ``enable_fusion``): HTK mel filters without area
  normalisation; the input is four mel maps (B, 4, 1001, 64). A recording up to 10 s gives
  four copies of its padded mel; a longer one gives its whole mel resized to 1,001 frames
  (bilinear) plus three 10 s crops, one from each third of the recording. The crops' starts
  are drawn with a seeded ``numpy.random.RandomState`` (the reference draws them from numpy's
  global generator, so its embeddings of long recordings vary between calls; ours do not);
* ``truncation="rand_trunc"`` (models without fusion): Slaney-style mel filters (librosa's
  defaults) on one map (B, 1, 1001, 64); a longer recording is cut to a 10 s segment at a
  seeded random start.

``is_longer``: the fusion model only fuses the local crops of items flagged ``is_longer``.
``ClapFeatureExtractor`` flags every longer recording, and when no recording of a call is
longer it flags one at random; TaxaBind's reference code embeds one recording per call, so
every recording it embeds is flagged. :class:`ClapAudioTower` does the same
(``always_longer=True``).

Weights: ``config.json`` (a ``clap_audio_model`` config, or a full ``clap`` config whose
``audio_config`` is used) and ``model.safetensors`` (keys ``audio_model.*`` and
``audio_projection.*``; a full CLAP model's text keys are ignored). Pickled ``.bin`` weights are
never loaded. The model is built from the config with transformers' classes and filled with
:func:`geoforensics.core.models.encoders.weights.read_state_dict`; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from geoforensics.core.audio.decode import load_audio
from geoforensics.core.errors import GeoforensicsError, InputError, WeightsNotFoundError
from geoforensics.core.load_errors import load_error_summary
from geoforensics.core.models.encoders.registry import (
    EncoderConfig,
    PrecomputedFeatures,
    WaveformFeatureExtractor,
    frontend_for,
    register_encoder,
    register_feature_extractor,
)
from geoforensics.core.models.encoders.weights import (
    file_sha256,
    read_state_dict,
    state_dict_problems,
)
from geoforensics.core.models.threads import torch_threads
from geoforensics.core.vision.weights import hf_cache_dir, hub_cache_snapshot

#: CLAP's sample rate (Hz).
CLAP_SAMPLE_RATE = 48_000
#: Weights file names looked for in a model folder, in order.
SAFETENSORS_NAMES: tuple[str, ...] = ("model.safetensors",)
PICKLE_NAMES: tuple[str, ...] = ("pytorch_model.bin", "model.bin", "model.pt", "model.ckpt")
_AUDIO_PREFIXES = ("audio_model.", "audio_projection.")
TRUNCATIONS: tuple[str, ...] = ("fusion", "rand_trunc")
PADDINGS: tuple[str, ...] = ("repeatpad", "repeat", "pad")


@dataclass(frozen=True)
class ClapFrontEnd:
    """CLAP's audio preprocessing settings (LAION's ``preprocessor_config.json`` values)."""

    sample_rate: int = CLAP_SAMPLE_RATE
    n_fft: int = 1024
    hop_length: int = 480
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 14_000.0
    max_length_s: float = 10.0
    padding: str = "repeatpad"
    truncation: str = "fusion"

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise InputError(f"CLAP truncation {self.truncation!r}: use one of {TRUNCATIONS}")
        if self.padding not in PADDINGS:
            raise InputError(f"CLAP padding {self.padding!r}: use one of {PADDINGS}")

    @property
    def max_samples(self) -> int:
        """Input length in samples (10 s at 48 kHz: 480,000)."""
        return round(self.max_length_s * self.sample_rate)

    @property
    def chunk_frames(self) -> int:
        """Mel frames of one input (1,001)."""
        return self.max_samples // self.hop_length + 1

    @property
    def channels(self) -> int:
        """Mel maps per input: 4 with fusion, else 1."""
        return 4 if self.truncation == "fusion" else 1

    @cached_property
    def _window(self) -> np.ndarray:
        return np.hanning(self.n_fft + 1)[:-1]  # periodic Hann

    @cached_property
    def _filters(self) -> np.ndarray:
        """(n_fft // 2 + 1, n_mels) mel filters of this truncation mode."""
        import librosa

        fusion = self.truncation == "fusion"
        bank = librosa.filters.mel(
            sr=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.f_min,
            fmax=self.f_max,
            htk=fusion,
            norm=None if fusion else "slaney",
            dtype=np.float64,
        )
        return np.ascontiguousarray(bank.T)

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(frames, n_mels) float64 dB mel power spectrogram of a mono waveform (centred
        frames, reflect padding)."""
        x = np.asarray(waveform, dtype=np.float64)
        pad = self.n_fft // 2
        x = np.pad(x, pad, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(x, self.n_fft)[:: self.hop_length]
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        mel = power @ self._filters
        return 10.0 * np.log10(np.maximum(mel, 1e-10))

    def _padded(self, waveform: np.ndarray) -> np.ndarray:
        n, target = waveform.size, self.max_samples
        if self.padding == "repeat":
            waveform = np.tile(waveform, target // n + 1)[:target]
        elif self.padding == "repeatpad":
            waveform = np.tile(waveform, target // n)
        return np.pad(waveform, (0, target - waveform.size))

    def features(self, waveform: np.ndarray, seed: int = 0) -> tuple[np.ndarray, bool]:
        """((channels, 1001, n_mels) float32 input, is_longer) of one mono 48 kHz recording.

        ``seed`` fixes the random crop positions used for recordings longer than 10 s.
        """
        wave = np.asarray(waveform, dtype=np.float64).reshape(-1)
        if wave.size == 0:
            raise InputError("CLAP front-end: empty waveform")
        if not np.isfinite(wave).all():
            raise InputError("CLAP front-end: the waveform holds NaN or infinite samples")
        rng = np.random.RandomState(seed)
        target = self.max_samples
        if wave.size > target:
            if self.truncation == "rand_trunc":
                start = rng.randint(0, wave.size - target + 1)
                mel = self.log_mel(wave[start : start + target])
                return mel[None].astype(np.float32), True
            mel = self.log_mel(wave)
            chunk, total = self.chunk_frames, mel.shape[0]
            if total == chunk:
                return np.stack([mel] * 4).astype(np.float32), False
            return self._fusion(mel, chunk, total, rng).astype(np.float32), True
        mel = self.log_mel(self._padded(wave) if wave.size < target else wave)
        stacked = np.stack([mel] * self.channels)
        return stacked.astype(np.float32), False

    def _fusion(
        self, mel: np.ndarray, chunk: int, total: int, rng: np.random.RandomState
    ) -> np.ndarray:
        """The whole mel resized to ``chunk`` frames plus one crop from each third."""
        ranges = np.array_split(np.arange(0, total - chunk + 1), 3)
        starts = [int(rng.choice(r if len(r) else np.array([0]))) for r in ranges]
        crops = [mel[s : s + chunk] for s in starts]
        shrunk = torch.nn.functional.interpolate(
            torch.from_numpy(mel.astype(np.float32))[None, None],  # float32, as transformers
            size=[chunk, self.n_mels],
            mode="bilinear",
            align_corners=False,
        )[0, 0].numpy()
        return np.stack([shrunk, *crops])


# ------------------------------------------------------------------------------- weights


def clap_folder_problems(folder: Path) -> list[str]:
    """What a CLAP audio folder lacks for offline loading (empty: usable)."""
    if not folder.is_dir():
        return ["the folder does not exist"]
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("config.json")
    if not any((folder / name).is_file() for name in SAFETENSORS_NAMES):
        pickles = [name for name in PICKLE_NAMES if (folder / name).exists()]
        note = f" ({', '.join(pickles)} present: pickled weights are not loaded)" if pickles else ""
        problems.append(f"model.safetensors{note}")
    return problems


def read_clap_audio_config(folder: str | os.PathLike[str]) -> Any:
    """The ``ClapAudioConfig`` of a folder's ``config.json`` (a ``clap_audio_model`` config or
    a full ``clap`` config)."""
    from transformers import ClapAudioConfig, ClapConfig

    path = Path(folder) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsNotFoundError(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object")
    kind = raw.get("model_type")
    try:
        if kind == "clap_audio_model":
            return ClapAudioConfig.from_dict(raw)
        if kind == "clap":
            return ClapConfig.from_dict(raw).audio_config
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a valid CLAP config ({exc})") from None
    raise InputError(
        f"{path}: model_type {kind!r} is not a CLAP audio model ('clap_audio_model' or 'clap')"
    )


def _check_audio_state(
    module: nn.Module, state: dict[str, torch.Tensor], source: Path
) -> dict[str, torch.Tensor]:
    """The audio tower's entries of ``state``, checked against ``module`` (one-line errors).

    Buffers the file may lack (index tables the model rebuilds) are taken from the module."""
    state = {k: v for k, v in state.items() if k.startswith(_AUDIO_PREFIXES)}
    expected = module.state_dict()
    parameters = {name for name, _ in module.named_parameters()}
    problems = state_dict_problems(expected, state, required=parameters, against="config")
    if problems:
        raise InputError(f"{source}: does not fit its config.json: " + "; ".join(problems))
    return {k: state.get(k, v) for k, v in expected.items()}


def load_clap_audio_model(folder: str | os.PathLike[str]) -> nn.Module:
    """``ClapAudioModelWithProjection`` built from ``folder/config.json`` and filled from
    ``folder/model.safetensors``, frozen, in eval mode."""
    from transformers import ClapAudioModelWithProjection

    root = Path(folder)
    problems = clap_folder_problems(root)
    if problems:
        raise WeightsNotFoundError(
            f"{root}: not a usable CLAP audio folder (missing {'; '.join(problems)})"
        )
    config = read_clap_audio_config(root)
    weights = next(root / name for name in SAFETENSORS_NAMES if (root / name).is_file())
    state = read_state_dict(weights)
    model = ClapAudioModelWithProjection(config)
    model.load_state_dict(_check_audio_state(model, state, weights), strict=True)
    model.requires_grad_(False)
    return model.eval()


class ClapAudioTower:
    """A loaded CLAP audio tower and its front-end: waveform -> unit-norm audio embedding.

    ``folder`` holds the hub layout (``config.json`` + ``model.safetensors``); the front-end's
    truncation follows the config (``fusion`` when ``enable_fusion``, else ``rand_trunc``),
    repeat padding, 10 s. ``always_longer`` flags every input as longer (see the module
    docstring); ``seed`` fixes the crops of recordings longer than 10 s.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        always_longer: bool = True,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.folder = Path(folder)
        self.model = load_clap_audio_model(self.folder).to(device)
        self.device = torch.device(device)
        config: Any = self.model.config
        self.fusion = bool(config.enable_fusion)
        self.frontend = ClapFrontEnd(truncation="fusion" if self.fusion else "rand_trunc")
        self.embed_dim = int(config.projection_dim)
        self.always_longer = always_longer
        self.seed = seed

    def inputs(self, waveform: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_features (1, C, 1001, 64), is_longer (1, 1)) tensors of one recording."""
        features, longer = self.frontend.features(waveform, seed=self.seed)
        flag = longer or (self.always_longer and self.fusion)
        return (
            torch.from_numpy(features)[None].to(self.device),
            torch.tensor([[flag]], device=self.device),
        )

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """(embed_dim,) float32 L2-normalised embedding of a mono 48 kHz waveform."""
        features, is_longer = self.inputs(waveform)
        with torch.inference_mode():
            out = self.model(input_features=features, is_longer=is_longer).audio_embeds
        vector = torch.nn.functional.normalize(out.float(), dim=1)[0]
        return vector.cpu().numpy().astype(np.float32)

    def embed_file(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Embedding of a whole audio file, decoded to mono at 48 kHz."""

        return self.embed(load_audio(path, sample_rate=CLAP_SAMPLE_RATE))


# ------------------------------------------------------------------- finding LAION's CLAP

#: LAION CLAP checkpoints on the hub looked for in the Hugging Face cache, in order (full
#: ``ClapModel``s; only their audio tower is used).
CLAP_LAION_HUB_IDS: tuple[str, ...] = ("laion/clap-htsat-fused", "laion/clap-htsat-unfused")
#: Environment variable naming a CLAP folder (``config.json`` + ``model.safetensors``).
CLAP_ENV = "GEOFORENSICS_CLAP"
CLAP_HINT = (
    f"run `geoforensics weights download clap` (needs internet once; {CLAP_LAION_HUB_IDS[0]}) "
    f"or export {CLAP_ENV}=FOLDER (config.json + model.safetensors of a CLAP model)"
)


def hub_snapshot(repo_id: str) -> Path | None:
    """A cached snapshot of ``repo_id`` in the Hugging Face cache holding ``config.json`` and
    ``model.safetensors`` (``refs/main`` first, then the newest), or None. Offline."""

    return hub_cache_snapshot(repo_id, clap_folder_problems)


def find_clap_weights() -> Path:
    """LAION's CLAP folder: ``$GEOFORENSICS_CLAP``, else a cached ``laion/clap-htsat-*``
    snapshot with safetensors. Offline; one-line :class:`WeightsNotFoundError` otherwise."""
    env = os.environ.get(CLAP_ENV)
    if env:
        folder = Path(env).expanduser()
        problems = clap_folder_problems(folder)
        if problems:
            raise WeightsNotFoundError(
                f"${CLAP_ENV} {folder}: not a usable CLAP folder (missing {'; '.join(problems)}); "
                f"{CLAP_HINT}"
            )
        return folder.resolve()
    for repo_id in CLAP_LAION_HUB_IDS:
        found = hub_snapshot(repo_id)
        if found is not None:
            return found
    raise WeightsNotFoundError(f"CLAP (LAION) weights not found: ${CLAP_ENV} unset; {CLAP_HINT}")


def clap_identity() -> str:
    """``clap-`` + SHA-256 of the found CLAP weights (memoised per file), without loading them."""
    return "clap-" + file_sha256(find_clap_weights() / "model.safetensors")[:16]


def download_clap(to: str | os.PathLike[str] | None = None) -> Path:
    """Download LAION's CLAP (``laion/clap-htsat-fused``; configs + safetensors) into ``to`` or
    the Hugging Face cache; returns the folder. Hub failures are one GeoforensicsError line."""
    from huggingface_hub import snapshot_download

    repo_id = CLAP_LAION_HUB_IDS[0]
    kwargs: dict[str, Any] = {
        "repo_id": repo_id,
        "allow_patterns": ["*.json", "*.safetensors"],
        "ignore_patterns": ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl"],
    }
    if to is not None:
        target = Path(to).expanduser()
        if target.exists() and not target.is_dir():
            raise GeoforensicsError(f"--to {target}: exists and is not a folder")
        kwargs["local_dir"] = str(target)
    else:
        kwargs["cache_dir"] = str(hf_cache_dir())
    try:
        folder = Path(snapshot_download(**kwargs))
    except Exception as exc:  # hub and network errors come in many types
        raise GeoforensicsError(
            f"downloading {repo_id} failed ({load_error_summary(exc)}); the Hugging Face hub "
            f"must be reachable: run this on a connected machine with --to FOLDER, copy FOLDER "
            f"here and export {CLAP_ENV}=FOLDER"
        ) from None
    problems = clap_folder_problems(folder)
    if problems:
        raise WeightsNotFoundError(f"downloaded {folder}: missing {'; '.join(problems)}")
    return folder


class ClapFeatures:
    """LAION CLAP's unit-norm audio embeddings of waveform windows (48 kHz) as a frozen
    ``waveform-features`` extractor: each window is embedded as a recording of its own
    (repeat-padded to 10 s; flagged longer under fusion, as in a one-item call)."""

    def __init__(self, num_threads: int, window_samples: int) -> None:
        self.window_samples = window_samples
        self.num_threads = num_threads
        self._identity = ""
        self._refresh()

    def _refresh(self) -> None:
        """(Re)load the tower when the weights found now are not the ones loaded (the
        registry keeps one extractor per process)."""
        current = clap_identity()
        if current != self._identity:
            self.tower = ClapAudioTower(find_clap_weights())
            self._identity = current

    @property
    def identity(self) -> str:
        return self._identity

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        self._refresh()
        inputs = [self.tower.inputs(window) for window in windows]
        features = torch.cat([f for f, _ in inputs])
        longer = torch.cat([flag for _, flag in inputs])
        with torch_threads(self.num_threads), torch.inference_mode():
            out = self.tower.model(input_features=features, is_longer=longer).audio_embeds
        return torch.nn.functional.normalize(out.float(), dim=1).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# the registered waveform-features encoder ``clap`` (paper Table 2a)


@register_encoder(
    "clap",
    EncoderConfig(
        "clap",
        feature_dim=512,
        image_size=1,
        in_channels=1,
        frontend="paper",
        input_kind="waveform-features",
        sample_rate=48_000,
        description="LAION CLAP HTSAT audio tower, frozen: unit-norm 512-d audio embedding of "
        "each 3 s window at 48 kHz (model input 10 s, repeat-padded; CLAP's own mel front-end); "
        "weights: $GEOFORENSICS_CLAP or the Hugging Face cache (geoforensics weights download "
        "clap)",
    ),
)
def _clap(config: EncoderConfig) -> nn.Module:
    return PrecomputedFeatures(config.feature_dim)


@register_feature_extractor("clap", clap_identity)
def _clap_features(num_threads: int) -> WaveformFeatureExtractor:
    return ClapFeatures(num_threads, frontend_for("clap").window_samples)
