"""The evaluation job over a codec: encode → decode every hold-out clip, score it, count its tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from pipeline.evaluate.clip import ClipScores, aggregate, score_clip
from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.dataset import EvaluationSet, iter_clips, select_holdout
from pipeline.evaluate.token_stats import TokenStats, token_statistics
from storage.fs import Location
from training.codec import Codec
from training.reconstruction import Reconstruction

# The clip shown in the report is the one with the median of this metric (always defined for a real clip).
MEDIAN_CLIP_METRIC = "mel_l1"


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation measured: per-clip scores, their aggregates, token statistics and the clip pair
    at the median of `MEDIAN_CLIP_METRIC` (for the report)."""

    selection: EvaluationSet
    clips: list[ClipScores]
    summary: dict[str, float]
    tokens: TokenStats
    median_clip: Reconstruction
    audio_seconds: float
    wall_seconds: float

    def metrics(self) -> dict[str, float]:
        """Every aggregate as one flat dict of MLflow metrics."""
        return {
            **self.summary,
            **self.tokens.as_metrics(),
            "clips": float(len(self.clips)),
            "audio_seconds": self.audio_seconds,
            "wall_seconds": self.wall_seconds,
        }


def group_cardinality(codec: Codec) -> list[int]:
    """Codes per token group, from the codec's packer (STYLE rule 6)."""
    return [maximum + 1 for maximum in codec.packer.group_max]


def reconstruct(codec: Codec, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode and decode one clip at its own rate: [L] -> (tokens [T, G] uint16, decoded [L] float32)."""
    encoded = codec.encode(audio, sample_rate)
    decoded = codec.decode(encoded.tokens, num_samples=encoded.num_samples, sample_rate=sample_rate)
    return encoded.tokens, decoded.detach().cpu().numpy().astype(np.float32, copy=False)


def evaluate_codec(
    codec: Codec,
    location: Location,
    config: EvaluateConfig | None = None,
    on_clip: Callable[[ClipScores], None] | None = None,
    selection: EvaluationSet | None = None,
) -> Evaluation:
    """Score `codec` on the hold-out segments of the sharded corpus at `location`.

    Clips stream one at a time; only their scores and tokens are kept, and the median clip is decoded again at
    the end from its kept tokens (decoding is deterministic), so memory does not grow with the hold-out audio.
    `selection` defaults to `select_holdout(location, config)`.
    """
    config = config or EvaluateConfig()
    started = time.perf_counter()
    selection = selection or select_holdout(location, config)
    clips: list[ClipScores] = []
    tokens: list[np.ndarray] = []
    audio_seconds = 0.0
    for clip in iter_clips(location, selection, config.max_seconds):
        rate = clip.segment.sample_rate
        clip_tokens, decoded = reconstruct(codec, clip.audio, rate)
        scores = score_clip(clip.audio, decoded, rate, config, key=clip.segment.key, speaker=clip.segment.speaker)
        clips.append(scores)
        tokens.append(clip_tokens)
        audio_seconds += clip.audio.shape[0] / rate
        if on_clip is not None:
            on_clip(scores)
    median = _median_clip(codec, location, selection, clips, tokens, config.max_seconds)
    return Evaluation(
        selection=selection,
        clips=clips,
        summary=aggregate(clips),
        tokens=token_statistics(tokens, group_cardinality(codec), codec.frame_rate),
        median_clip=median,
        audio_seconds=audio_seconds,
        wall_seconds=time.perf_counter() - started,
    )


def median_index(clips: list[ClipScores], metric: str = MEDIAN_CLIP_METRIC) -> int:
    """Position of the clip at the (lower) median of `metric`; clip 0 when no clip has it."""
    scored = [(clip.values[metric], i) for i, clip in enumerate(clips) if metric in clip.values]
    if not scored:
        return 0
    return sorted(scored)[(len(scored) - 1) // 2][1]


def _median_clip(
    codec: Codec,
    location: Location,
    selection: EvaluationSet,
    clips: list[ClipScores],
    tokens: list[np.ndarray],
    max_seconds: float | None,
) -> Reconstruction:
    """Read the median clip's audio again and decode its kept tokens (no second encode)."""
    index = median_index(clips)
    key = clips[index].key
    segment = next(s for s in selection.segments if s.key == key)
    single = EvaluationSet(selection.shards_url, [segment], selection.scoring)
    with closing(iter_clips(location, single, max_seconds)) as stream:
        clip = next(stream)
    rate = segment.sample_rate
    decoded = codec.decode(tokens[index], num_samples=clip.audio.shape[0], sample_rate=rate)
    return Reconstruction(key, clip.audio, decoded.detach().cpu().numpy().astype(np.float32, copy=False), rate)
