"""Decode a source file exactly, and encode a segment losslessly as FLAC."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile

from pipeline.sharding.records import FilePlan, Reason, Rejection, Stage

# Integer PCM is decoded as integers so a segment's FLAC holds exactly the source's samples; 24-bit audio
# needs int32 to stay exact. Float sources (WAV) are checked for NaN/inf and stored as 16-bit FLAC.
_INTEGER_SUBTYPES = {"PCM_S8": ("int16", "PCM_16"), "PCM_U8": ("int16", "PCM_16"), "PCM_16": ("int16", "PCM_16")}
_WIDE_SUBTYPES = {"PCM_24": ("int32", "PCM_24"), "PCM_32": ("int32", "PCM_24")}


@dataclass(frozen=True)
class DecodedAudio:
    """Mono samples of a whole source file, in the dtype the FLAC encoder will write."""

    samples: np.ndarray  # [frames], int16 or int32
    sample_rate: int
    flac_subtype: str  # "PCM_16" or "PCM_24"
    notes: tuple[str, ...]


def decode_source(data: bytes, plan: FilePlan) -> DecodedAudio | Rejection:
    """Decode the whole file, check it against its header, downmix, and reject what cannot be kept."""
    where = plan.source.audio
    notes: list[str] = []
    if plan.subtype in _INTEGER_SUBTYPES or plan.subtype in _WIDE_SUBTYPES:
        dtype, flac_subtype = _INTEGER_SUBTYPES.get(plan.subtype) or _WIDE_SUBTYPES[plan.subtype]
    else:
        dtype, flac_subtype = "float32", "PCM_16"
    try:
        samples, sample_rate = soundfile.read(io.BytesIO(data), dtype=dtype, always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        return Rejection(where, Stage.AUDIO, Reason.CORRUPT_AUDIO, f"{where}: {error}")
    if samples.shape[0] == 0:
        return Rejection(where, Stage.AUDIO, Reason.EMPTY_AUDIO, f"{where} decodes to no samples")
    if samples.shape[0] < plan.num_frames:
        return Rejection(
            where,
            Stage.AUDIO,
            Reason.TRUNCATED_AUDIO,
            f"{where}: decoded {samples.shape[0]} of the {plan.num_frames} frames its header declares",
        )
    if dtype == "float32":
        if not np.isfinite(samples).all():
            bad = int((~np.isfinite(samples)).sum())
            return Rejection(where, Stage.AUDIO, Reason.NON_FINITE_AUDIO, f"{where}: {bad} NaN/inf samples")
        notes.append(f"{plan.subtype} samples stored as 16-bit FLAC")
        samples = np.round(np.clip(samples, -1.0, 1.0 - 1.0 / 32768) * 32768).astype(np.int16)
    mono = _downmix(samples)
    return DecodedAudio(samples=mono, sample_rate=int(sample_rate), flac_subtype=flac_subtype, notes=tuple(notes))


def _downmix(samples: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames]; the channel mean, rounded back to the integer dtype."""
    if samples.shape[1] == 1:
        return samples[:, 0]
    mean = samples.astype(np.float64).mean(axis=1)
    return np.round(mean).astype(samples.dtype)


def encode_flac(samples: np.ndarray, sample_rate: int, subtype: str) -> bytes:
    """Lossless FLAC bytes for a mono integer segment (libsndfile's encoder is deterministic)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format="FLAC", subtype=subtype)
    return buffer.getvalue()
