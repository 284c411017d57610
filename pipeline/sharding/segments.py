"""Turn voice-activity regions into segments no longer than a limit (issue 2, "merge voice-activity")."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from pipeline.sharding.records import TimeSpan


def merge_regions(regions: Sequence[TimeSpan], max_seconds: float) -> list[TimeSpan]:
    """Greedily merge consecutive regions into segments of at most `max_seconds`.

    A segment runs from the start of its first region to the end of its last, so the short pauses between
    merged regions stay in the audio; silence between segments is dropped. A region is never cut unless it
    alone is longer than the limit, in which case it is split into equal pieces no longer than the limit.
    `regions` must be sorted and non-overlapping (see `validate_regions`).
    """
    segments: list[TimeSpan] = []
    current: TimeSpan | None = None
    for region in regions:
        if region.duration_s > max_seconds:
            if current is not None:
                segments.append(current)
                current = None
            segments.extend(_split_evenly(region, max_seconds))
            continue
        if current is None:
            current = region
        elif region.end_s - current.start_s <= max_seconds:
            current = TimeSpan(current.start_s, region.end_s)
        else:
            segments.append(current)
            current = region
    if current is not None:
        segments.append(current)
    return segments


def _split_evenly(region: TimeSpan, max_seconds: float) -> list[TimeSpan]:
    pieces = math.ceil(region.duration_s / max_seconds)
    step = region.duration_s / pieces
    bounds = [region.start_s + i * step for i in range(pieces)] + [region.end_s]
    return [TimeSpan(start, end) for start, end in itertools.pairwise(bounds)]


def parse_voice_activity(value: object, duration_s: float, where: str) -> list[TimeSpan]:
    """Validate LibriLight's `voice_activity` ([[start_s, end_s], ...]) and clip it to the file.

    Raises ValueError naming `where` and the bad entry; regions entirely past the end of the audio are
    dropped by the clip, and sorting is enforced rather than assumed.
    """
    if not isinstance(value, list):
        raise ValueError(f"{where}: voice_activity must be a list of [start_s, end_s], got {type(value).__name__}")
    regions: list[TimeSpan] = []
    for index, entry in enumerate(value):
        if (
            not isinstance(entry, list | tuple)
            or len(entry) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in entry)
        ):
            raise ValueError(f"{where}: voice_activity[{index}] = {entry!r} is not a [start_s, end_s] pair")
        start, end = float(entry[0]), float(entry[1])
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise ValueError(f"{where}: voice_activity[{index}] = {entry!r} needs 0 <= start_s < end_s")
        start, end = min(start, duration_s), min(end, duration_s)
        if end > start:
            regions.append(TimeSpan(start, end))
    regions.sort(key=lambda span: span.start_s)
    for previous, following in itertools.pairwise(regions):
        if following.start_s < previous.end_s:
            raise ValueError(
                f"{where}: voice_activity regions overlap ({previous.start_s}-{previous.end_s} and "
                f"{following.start_s}-{following.end_s})"
            )
    return regions
