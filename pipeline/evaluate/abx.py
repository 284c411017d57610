"""ABX phone discriminability (Schatz et al. 2013) with the ZeroSpeech `zerospeech-libriabx2` scorer on item files
speechtok builds from the sample corpus's phone timings (espeak-ng phoneme events, `sample_corpus.phones`).

Any-context condition (a, b, x are phone occurrences, whatever their neighbours), within and across speaker,
cosine frame distance with DTW, as the ZeroSpeech 2021 phonetic track. Features at a frame rate below the phone
rate (speechtok's 2.5 Hz codes) are repeated to `ABX_FRAME_SECONDS`, so each phone is represented by the frame
that covers it; a 0.4 s frame spans several phones, which is what the score then measures.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.evaluate.metrics import MetricUnavailable
from pipeline.evaluate.optional import require

ABX_FRAME_SECONDS = 0.01  # libri-light ABX's default feature step (10 ms)
_MIN_PHONE_SECONDS = 0.03  # shorter phones give fewer than 3 frames: libriabx2 drops them anyway


@dataclass(frozen=True)
class AbxFile:
    """One utterance's features and phones: `features` [T, D] at `frame_seconds`, phones as (phone, start_s, end_s)
    from the features' first frame."""

    file_id: str
    speaker: str
    features: np.ndarray
    frame_seconds: float
    phones: Sequence[tuple[str, float, float]]


def resample_frames(features: np.ndarray, frame_seconds: float, seconds: float) -> np.ndarray:
    """Repeat (or pick) frames onto the ABX grid by nearest earlier frame: [T, D] -> [⌈seconds / 10 ms⌉, D]."""
    steps = max(1, int(np.ceil(seconds / ABX_FRAME_SECONDS)))
    source = np.minimum((np.arange(steps) * ABX_FRAME_SECONDS / frame_seconds).astype(np.int64), len(features) - 1)
    return np.ascontiguousarray(features[source], dtype=np.float32)  # [steps, D]


def write_item_file(files: Sequence[AbxFile], path: Path) -> int:
    """The libri-light `.item` file (`#file onset offset #phone prev-phone next-phone speaker`); returns the count
    of items. Edge phones get `SIL` as their missing neighbour."""
    lines = ["#file onset offset #phone prev-phone next-phone speaker"]
    for item in files:
        names = [phone for phone, _, _ in item.phones]
        for index, (phone, start, end) in enumerate(item.phones):
            if end - start < _MIN_PHONE_SECONDS:
                continue
            previous = names[index - 1] if index > 0 else "SIL"
            following = names[index + 1] if index + 1 < len(names) else "SIL"
            lines.append(f"{item.file_id} {start:.4f} {end:.4f} {phone} {previous} {following} {item.speaker}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def abx_error_rates(files: Sequence[AbxFile], seed: int = 3459) -> dict[str, float]:
    """ABX error rates in [0, 1] (0: phones perfectly separated, 0.5: chance) of `files`' features:
    {"within": any-context within speaker, "across": any-context across speaker}.

    Raises MetricUnavailable when there are no phone items, or across-speaker pairs are impossible (one speaker).
    """
    zrc_abx2 = require("zrc_abx2", "abx")
    speakers = {item.speaker for item in files}
    with tempfile.TemporaryDirectory(prefix="speechtok-abx-") as scratch:
        root = Path(scratch)
        features = root / "features"
        features.mkdir()
        for item in files:
            seconds = len(item.features) * item.frame_seconds
            np.save(features / f"{item.file_id}.npy", resample_frames(item.features, item.frame_seconds, seconds))
        if write_item_file(files, root / "phones.item") == 0:
            raise MetricUnavailable("no phone items (the corpus has no phone timings: espeak-ng backend needed)")
        modes = ["within", "across"] if len(speakers) > 1 else ["within"]
        results: dict[str, float] = {}
        for mode in modes:
            args = zrc_abx2.EvalArgs(
                path_data=str(features),
                path_item_file=str(root / "phones.item"),
                file_extension=".npy",
                feature_size=ABX_FRAME_SECONDS,
                speaker_mode=mode,
                context_mode="any",
                distance_mode="cosine",
                seed=seed,
            )
            with contextlib.redirect_stdout(io.StringIO()):  # libriabx2 prints progress to stdout
                scores = zrc_abx2.EvalABX().eval_abx(args)
            results[mode] = float(scores[0]["score"])
    return results
