"""The evaluation job over a codec: encode → decode every hold-out clip, score it, count its tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.evaluate.abx import AbxFile, abx_error_rates
from pipeline.evaluate.baselines.codec2 import Codec2Baseline
from pipeline.evaluate.clip import ClipScores, aggregate, score_clip
from pipeline.evaluate.config import BASELINES, EvaluateConfig
from pipeline.evaluate.dataset import EvaluationSet, iter_clips, select_holdout
from pipeline.evaluate.metrics import MetricUnavailable
from pipeline.evaluate.optional import MetricSkipped, require
from pipeline.evaluate.references import ClipReference
from pipeline.evaluate.suite import Original, QualitySuite, Timings, speaker_floor
from pipeline.evaluate.token_stats import TokenStats, token_statistics
from storage.fs import Location
from training.codec import Codec
from training.reconstruction import Reconstruction

# The clip shown in the report is the one with the median of this metric (always defined for a real clip).
MEDIAN_CLIP_METRIC = "mel_l1"
CANDIDATE = "speechtok"
PRODUCTION = "production"
TRIO_BASELINE = "codec2_700c"  # the spectrogram trio's third panel: Codec2 at speechtok's bit rate


@dataclass(frozen=True)
class SystemScores:
    """One row of the comparison table: a system, its bit rate, its per-clip scores and their aggregates."""

    name: str
    bitrate_bps: float
    clips: list[ClipScores]
    summary: dict[str, float]


@dataclass
class _System:
    name: str
    bitrate_bps: float
    reconstruct: Callable[[np.ndarray, int], np.ndarray]
    clips: list[ClipScores]


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
    systems: list[SystemScores] = field(default_factory=list)  # the candidate first, then production, baselines
    runtimes: dict[str, float] = field(default_factory=dict)  # compute seconds per audio minute, by metric
    skipped: dict[str, str] = field(default_factory=dict)  # metric group -> why it did not run
    trio_clip: np.ndarray | None = None  # the median clip through Codec2 700C, for the spectrogram trio

    def metrics(self) -> dict[str, float]:
        """Every aggregate as one flat dict of MLflow metrics: the candidate's under their own names, the other
        systems' as `system.{name}.{metric}`, runtimes as `runtime.{metric}.s_per_audio_min`."""
        others = {
            f"system.{system.name}.{name}": value
            for system in self.systems[1:]
            for name, value in {**system.summary, "bitrate_bps": system.bitrate_bps}.items()
        }
        return {
            **self.summary,
            **self.tokens.as_metrics(),
            **others,
            **{f"runtime.{name}.s_per_audio_min": value for name, value in self.runtimes.items()},
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


def nominal_bitrate(codec: Codec) -> float:
    """Bits per second of the token stream at full code usage: frame_rate · Σ_g log2(cardinality_g)."""
    return float(codec.frame_rate * sum(np.log2(cardinality) for cardinality in group_cardinality(codec)))


@torch.inference_mode()
def representations(codec: Codec, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 encoder output and its dequantized FSQ codes for one clip: [L] -> ([T, D], [T, D]) at 1 / frame_rate."""
    wav = codec._to_model_rate(torch.from_numpy(np.asarray(audio, dtype=np.float32)), sample_rate)
    frames = -(-wav.shape[-1] // codec.hop)
    wav = torch.nn.functional.pad(wav, (0, frames * codec.hop - wav.shape[-1]))  # whole frames, as encode() does
    was_training = codec.training
    codec.eval()
    z = codec.encoder(wav.view(1, 1, -1).to(codec.device))  # [1, D, T]
    values = codec.fsq(z).values  # [1, D, T]
    codec.train(was_training)
    return z[0].T.cpu().numpy(), values[0].T.cpu().numpy()


def evaluate_codec(
    codec: Codec,
    location: Location,
    config: EvaluateConfig | None = None,
    on_clip: Callable[[ClipScores], None] | None = None,
    selection: EvaluationSet | None = None,
    *,
    production: Codec | None = None,
    references: dict[str, ClipReference] | None = None,
) -> Evaluation:
    """Score `codec` on the hold-out segments of the sharded corpus at `location`, and beside it on the same
    clips `production` (when given) and the Codec2 baselines of `config.baselines`.

    Clips stream one at a time; only their scores and tokens are kept, and the median clip is decoded again at
    the end from its kept tokens (decoding is deterministic), so memory does not grow with the hold-out audio.
    `selection` defaults to `select_holdout(location, config)`; `references` (`load_references`) give WER texts
    and ABX phones. `on_clip` is called with each of the candidate's clip scores.
    """
    config = config or EvaluateConfig()
    started = time.perf_counter()
    selection = selection or select_holdout(location, config)
    references = references or {}
    timings = Timings()
    suite = QualitySuite(config.metrics, timings)
    systems = [_System(CANDIDATE, nominal_bitrate(codec), lambda audio, rate: reconstruct(codec, audio, rate)[1], [])]
    if production is not None:
        systems.append(_System(PRODUCTION, nominal_bitrate(production), _decoder(production), []))
    skipped: dict[str, str] = {}
    try:
        if config.baselines:
            require("pycodec2", "baselines")
        for name in config.baselines:
            baseline = Codec2Baseline(name, float(BASELINES[name]))
            systems.append(_System(name, baseline.bitrate_bps, baseline.reconstruct, []))
    except MetricSkipped as error:
        skipped["baselines"] = str(error)
    tokens: list[np.ndarray] = []
    originals: dict[str, Original] = {}
    abx_files: dict[str, list[AbxFile]] = {"encoder": [], "codes": []}
    audio_seconds = 0.0
    for clip in iter_clips(location, selection, config.max_seconds):
        rate, key, speaker = clip.segment.sample_rate, clip.segment.key, clip.segment.speaker
        seconds = clip.audio.shape[0] / rate
        reference = references.get(key, ClipReference(None, [], "no --corpus given: reference text unknown"))
        originals[key] = suite.original(key, speaker, clip.audio, rate, reference)
        for system in systems:
            if system.name == CANDIDATE:
                clip_tokens, decoded = reconstruct(codec, clip.audio, rate)
                tokens.append(clip_tokens)
            else:
                decoded = system.reconstruct(clip.audio, rate)
            spent: dict[str, float] = {}
            scores = score_clip(clip.audio, decoded, rate, config, key=key, speaker=speaker, timings=spent)
            for name, value in spent.items():
                timings.seconds[name] += value
                timings.audio_seconds[name] += seconds
            suite.score(scores, originals[key], clip.audio, decoded, rate)
            system.clips.append(scores)
            if system.name == CANDIDATE and on_clip is not None:
                on_clip(scores)
        if "abx" in config.metrics and reference.phones:
            with timings.measure("abx", seconds):
                encoder, codes = representations(codec, clip.audio, rate)
            frame = 1.0 / codec.frame_rate
            abx_files["encoder"].append(AbxFile(key, speaker, encoder, frame, reference.phones))
            abx_files["codes"].append(AbxFile(key, speaker, codes, frame, reference.phones))
        audio_seconds += seconds
    clips = systems[0].clips
    median = _median_clip(codec, location, selection, clips, tokens, config.max_seconds)
    scored = [SystemScores(s.name, s.bitrate_bps, s.clips, _summary(s.clips, originals)) for s in systems]
    skipped.update(suite.skipped)
    if "abx" in config.metrics:
        _abx(abx_files, scored[0].summary, skipped, timings, audio_seconds)
    trio = next((s for s in systems if s.name == TRIO_BASELINE), None)
    return Evaluation(
        selection=selection,
        clips=clips,
        summary=scored[0].summary,
        tokens=token_statistics(tokens, group_cardinality(codec), codec.frame_rate),
        median_clip=median,
        audio_seconds=audio_seconds,
        wall_seconds=time.perf_counter() - started,
        systems=scored,
        runtimes=timings.per_audio_minute(),
        skipped=skipped,
        trio_clip=None if trio is None else trio.reconstruct(median.original, median.sample_rate),
    )


def _decoder(codec: Codec) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda audio, rate: reconstruct(codec, audio, rate)[1]


def _summary(clips: list[ClipScores], originals: dict[str, Original]) -> dict[str, float]:
    summary = aggregate(clips)
    floor = speaker_floor(clips, originals)
    if floor is not None:
        summary["speaker_sim_floor"] = floor
    return summary


def _abx(
    files: dict[str, list[AbxFile]],
    summary: dict[str, float],
    skipped: dict[str, str],
    timings: Timings,
    audio_seconds: float,
) -> None:
    """ABX of the candidate's encoder output and dequantized codes into `summary` (or the reason into `skipped`)."""
    if not files["encoder"]:
        skipped["abx"] = "abx skipped: no phone timings (pass --corpus with a sample corpus made by espeak-ng)"
        return
    try:
        with timings.measure("abx", 0.0):  # the clips' audio was counted once when their features were made
            for representation, items in files.items():
                for mode, value in abx_error_rates(items).items():
                    summary[f"abx_{mode}_{representation}"] = value
    except (MetricSkipped, MetricUnavailable) as error:
        skipped["abx"] = str(error)


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
