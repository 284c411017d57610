"""Held-out reconstructions for MLflow: audio pairs and spectrogram plots (stage 2 artifacts)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display (set here, where plots are made, not at package import)
import matplotlib.pyplot as plt
import numpy as np
import soundfile
import torch

from storage.fs import Location
from storage.webdataset_io import iter_samples, list_shards
from training.codec import Codec


@dataclass(frozen=True)
class Reconstruction:
    key: str
    original: np.ndarray  # [L] float32 at `sample_rate`
    decoded: np.ndarray  # [L] float32 at `sample_rate`
    sample_rate: int


def reconstruct_holdout(
    codec: Codec, location: Location, count: int = 3, max_seconds: float = 6.0
) -> list[Reconstruction]:
    """Encode → decode the first `count` hold-out segments (training shards when there is no hold-out)."""
    shards = list_shards(location, holdout=True) or list_shards(location, holdout=False)
    results = []
    for sample in iter_samples(location, shards):
        audio, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32")
        audio = audio[: int(max_seconds * rate)]
        encoded = codec.encode(audio, rate)
        decoded = codec.decode(encoded.tokens, encoded.num_samples, sample_rate=rate)
        results.append(Reconstruction(sample["__key__"], audio, decoded.cpu().numpy().astype(np.float32), rate))
        if len(results) == count:
            break
    return results


def write_reconstructions(items: list[Reconstruction], directory: Path) -> list[Path]:
    """`{key}_original.wav`, `{key}_decoded.wav` and `{key}_spectrogram.png` per clip."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for item in items:
        for name, audio in (("original", item.original), ("decoded", item.decoded)):
            path = directory / f"{item.key}_{name}.wav"
            soundfile.write(path, audio, item.sample_rate)
            written.append(path)
        written.append(plot_spectrograms(item, directory / f"{item.key}_spectrogram.png"))
    return written


def plot_spectrograms(item: Reconstruction, path: Path) -> Path:
    figure, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for axis, (title, audio) in zip(axes, (("original", item.original), ("decoded", item.decoded)), strict=True):
        spectrum = torch.stft(
            torch.from_numpy(audio), n_fft=512, hop_length=128, window=torch.hann_window(512), return_complex=True
        ).abs()
        axis.imshow(
            20 * np.log10(spectrum.numpy() + 1e-5),
            origin="lower",
            aspect="auto",
            extent=(0, len(audio) / item.sample_rate, 0, item.sample_rate / 2000),
            vmin=-100,
            vmax=20,
        )
        axis.set_title(f"{item.key}: {title}")
        axis.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
