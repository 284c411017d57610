"""Voice-activity merging: limits, coverage, and never cutting inside a region that fits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sharding.records import TimeSpan
from pipeline.sharding.segments import merge_regions, parse_voice_activity


@st.composite
def region_lists(draw: st.DrawFn) -> list[TimeSpan]:
    gaps = draw(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=30))
    lengths = draw(st.lists(st.floats(0.05, 40.0), min_size=len(gaps), max_size=len(gaps)))
    regions, cursor = [], 0.0
    for gap, length in zip(gaps, lengths, strict=True):
        cursor += gap
        regions.append(TimeSpan(cursor, cursor + length))
        cursor += length
    return regions


@given(region_lists(), st.floats(1.0, 20.0))
def test_merged_segments_respect_limit_and_cover_every_region(regions: list[TimeSpan], limit: float) -> None:
    segments = merge_regions(regions, limit)
    assert all(seg.duration_s <= limit + 1e-9 for seg in segments)
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(segments))
    for region in regions:
        covering = [s for s in segments if s.start_s < region.end_s and region.start_s < s.end_s]
        if region.duration_s <= limit:
            # a region that fits is never cut: exactly one segment contains it whole
            assert len(covering) == 1
            assert covering[0].start_s <= region.start_s and region.end_s <= covering[0].end_s
        else:
            assert (
                abs(
                    sum(min(s.end_s, region.end_s) - max(s.start_s, region.start_s) for s in covering)
                    - region.duration_s
                )
                < 1e-6
            )


def test_merge_groups_neighbours_up_to_the_limit() -> None:
    regions = [TimeSpan(0.5, 3.0), TimeSpan(3.5, 8.0), TimeSpan(9.0, 20.0), TimeSpan(21.0, 22.0)]
    assert merge_regions(regions, 16.0) == [TimeSpan(0.5, 8.0), TimeSpan(9.0, 22.0)]


def test_region_longer_than_limit_is_split_evenly() -> None:
    assert merge_regions([TimeSpan(0.0, 40.0)], 16.0) == [
        TimeSpan(0.0, 40 / 3),
        TimeSpan(40 / 3, 80 / 3),
        TimeSpan(80 / 3, 40.0),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "must be a list"),
        ([[1.0]], "is not a [start_s, end_s] pair"),
        ([["a", 2]], "is not a [start_s, end_s] pair"),
        ([[2.0, 1.0]], "needs 0 <= start_s < end_s"),
        ([[0.0, 2.0], [1.0, 3.0]], "overlap"),
    ],
)
def test_bad_voice_activity_is_named(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")) as error:
        parse_voice_activity(value, 10.0, "small/1/2/x.json")
    assert "small/1/2/x.json" in str(error.value)


def test_voice_activity_is_sorted_and_clipped_to_the_audio() -> None:
    assert parse_voice_activity([[5.0, 12.0], [0.5, 1.0], [20.0, 21.0]], 10.0, "x.json") == [
        TimeSpan(0.5, 1.0),
        TimeSpan(5.0, 10.0),
    ]
