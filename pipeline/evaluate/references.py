"""What each hold-out clip says: its text (for WER) and phone timings (for ABX), read from the raw corpus's JSON.

The sample corpus writes `utterances` (one per voice_activity region: `start`, `end`, `text`, `phones`) beside
LibriLight's fields; a segment of `speechtok shard` is cut from its source file at `start_s`, so the utterances
inside the scored window are the clip's reference. Real LibriLight has no text: there, WER is skipped and dWER
(which needs none) is still reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pipeline.evaluate.dataset import EvaluationSet
from pipeline.sharding.manifest import read_shard_segments
from storage.fs import Location

# Utterance ends are rounded up to whole milliseconds (sample_corpus.assemble): allow that much overhang.
_EDGE_SECONDS = 0.002


@dataclass(frozen=True)
class ClipReference:
    """A clip's text (None: unknown, `why` says why) and phones as (phone, start_s, end_s) from the clip's start."""

    text: str | None
    phones: list[tuple[str, float, float]] = field(default_factory=list)
    why: str = ""


def clip_reference(utterances: list[dict], start_s: float, seconds: float) -> ClipReference:
    """The reference of the window [start_s, start_s + seconds) of a file with these `utterances`."""
    end_s = start_s + seconds
    inside = [u for u in utterances if u["start"] >= start_s - _EDGE_SECONDS and u["end"] <= end_s + _EDGE_SECONDS]
    cut = [u for u in utterances if u["start"] < end_s and u["end"] > start_s and u not in inside]
    phones = [
        (str(name), round(begin - start_s, 4), round(min(end, end_s) - start_s, 4))
        for u in inside
        for name, begin, end in (u.get("phones") or [])
        if begin >= start_s
    ]
    if cut:
        return ClipReference(None, phones, "the scored window cuts an utterance (use whole segments for WER)")
    if not inside:
        return ClipReference(None, phones, "no utterance inside the scored window")
    return ClipReference(" ".join(str(u["text"]) for u in inside), phones)


def load_references(
    corpus: Location, shards: Location, selection: EvaluationSet, max_seconds: float | None
) -> dict[str, ClipReference]:
    """Reference of every selected segment, from `{corpus}/{source stem}.json` (`utterances` field).

    A segment whose JSON has no `utterances` (real LibriLight) gets text None with the reason.
    """
    columns = ["key", "source", "start_s", "end_s"]
    needed = sorted({segment.shard for segment in selection.segments})  # the selected shards' parts, not the corpus
    rows = {row["key"]: row for shard in needed for row in read_shard_segments(shards, shard, columns).to_pylist()}
    references: dict[str, ClipReference] = {}
    cache: dict[str, list[dict] | None] = {}
    for segment in selection.segments:
        row = rows[segment.key]
        source = str(row["source"])
        if source not in cache:
            name = source.rsplit(".", 1)[0] + ".json"
            cache[source] = json.loads(corpus.read_bytes(name)).get("utterances") if corpus.exists(name) else None
        utterances = cache[source]
        if utterances is None:
            references[segment.key] = ClipReference(None, [], f"{corpus.url_of(source)} has no JSON `utterances`")
            continue
        seconds = row["end_s"] - row["start_s"]
        if max_seconds is not None:
            seconds = min(seconds, max_seconds)
        references[segment.key] = clip_reference(utterances, float(row["start_s"]), float(seconds))
    return references
