"""Energy-based voice activity: the documented fallback when a JSON has no `voice_activity` (issue 2)."""

from __future__ import annotations

import numpy as np

from pipeline.sharding.records import TimeSpan

_FRAME_SECONDS = 0.03
# Speech frames sit well above the noise floor; 10 dB over the quietest decile, or a third of the way to
# the loud frames when the dynamic range is large, separates them on audiobook recordings.
_MIN_MARGIN_DB = 10.0
_RANGE_FRACTION = 0.33
_BRIDGE_SECONDS = 0.3  # pauses shorter than this stay inside a region (word gaps)
_MIN_REGION_SECONDS = 0.1
_PAD_SECONDS = 0.05


def energy_regions(samples: np.ndarray, sample_rate: int) -> list[TimeSpan]:
    """Speech regions of a mono signal `[frames]`, found by thresholding 30 ms frame energies."""
    frame = max(1, int(_FRAME_SECONDS * sample_rate))
    count = len(samples) // frame
    if count == 0:
        return []
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)  # [n_frames, frame]
    energy_db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    quiet, loud = np.percentile(energy_db, 10), np.percentile(energy_db, 95)
    threshold = quiet + max(_MIN_MARGIN_DB, _RANGE_FRACTION * (loud - quiet))
    active = energy_db > threshold
    if not active.any():
        return []
    # Run boundaries of the active mask: starts where it turns on, ends where it turns off.
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    duration = len(samples) / sample_rate
    regions: list[TimeSpan] = []
    for start, end in zip(starts * frame / sample_rate, ends * frame / sample_rate, strict=True):
        if regions and start - regions[-1].end_s < _BRIDGE_SECONDS:
            regions[-1] = TimeSpan(regions[-1].start_s, float(end))
        else:
            regions.append(TimeSpan(float(start), float(end)))
    return [
        TimeSpan(max(0.0, span.start_s - _PAD_SECONDS), min(duration, span.end_s + _PAD_SECONDS))
        for span in regions
        if span.duration_s >= _MIN_REGION_SECONDS
    ]
