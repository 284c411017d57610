"""Plain records passed between the sharding steps (discover → inspect → plan → write → manifest)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

SHARDS_DIR = "shards"  # the tars, under the shard root


class Stage(StrEnum):
    """Where in the job a file was rejected."""

    DISCOVER = "discover"
    METADATA = "metadata"
    AUDIO = "audio"


class Reason(StrEnum):
    """Rejection categories (the summary groups by these); the free-text detail says the specifics."""

    BAD_LAYOUT = "bad_layout"
    UNREADABLE = "unreadable"
    MISSING_JSON = "missing_json"
    MALFORMED_JSON = "malformed_json"
    NO_VOICE_ACTIVITY = "no_voice_activity"
    CORRUPT_AUDIO = "corrupt_audio"
    TRUNCATED_AUDIO = "truncated_audio"
    EMPTY_AUDIO = "empty_audio"
    NON_FINITE_AUDIO = "non_finite_audio"
    NO_SPEECH = "no_speech"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input file that produced no segment, and why."""

    source: str  # audio path relative to the corpus root (also for problems with its JSON)
    stage: Stage
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class SourceFile:
    """An audio file found in `{split}/{speaker}/{book}/{name}.{ext}` and its JSON sidecar."""

    split: str
    speaker: str
    book: str
    name: str
    audio: str  # relative path of the audio file
    size_bytes: int

    @property
    def json(self) -> str:
        return self.audio.rsplit(".", 1)[0] + ".json"


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """[start_s, end_s) in seconds from the start of the source file."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def pack_spans(spans: Sequence[TimeSpan]) -> bytes:
    """Spans as consecutive (start_s, end_s) float64 pairs: 16 bytes a segment instead of ~100 as objects, so a
    plan of the whole corpus (~15 M segments) stays a compact record per file."""
    return array("d", [value for span in spans for value in (span.start_s, span.end_s)]).tobytes()


def unpack_spans(packed: bytes) -> tuple[TimeSpan, ...]:
    values = array("d")
    values.frombytes(packed)
    return tuple(TimeSpan(values[i], values[i + 1]) for i in range(0, len(values), 2))


@dataclass(frozen=True, slots=True)
class FilePlan:
    """What the writer will do with one file, decided from its JSON and audio header alone."""

    source: SourceFile
    sample_rate: int
    num_frames: int
    channels: int
    subtype: str
    snr: float | None
    voiced: bytes | None  # `pack_spans` of the segments to cut; None: decided after decoding by the energy VAD
    holdout: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def segments(self) -> tuple[TimeSpan, ...] | None:
        return None if self.voiced is None else unpack_spans(self.voiced)

    @property
    def num_segments(self) -> int | None:
        return None if self.voiced is None else len(self.voiced) // 16

    @property
    def vad_source(self) -> str:
        return "json" if self.voiced is not None else "energy"


@dataclass(frozen=True)
class ShardPlan:
    """One output shard: its name and the files (in order) whose segments it holds."""

    name: str  # "{split}-{index:06d}"
    split: str
    holdout: bool
    files: tuple[FilePlan, ...]
    estimated_bytes: int

    @property
    def tar_name(self) -> str:
        return f"{self.name}.tar"


@dataclass(frozen=True)
class SegmentRow:
    """One sample of a shard; also one row of `manifest/segments.parquet`."""

    key: str
    shard: str
    split: str
    holdout: bool
    speaker: str
    book: str
    source: str
    segment_index: int
    start_s: float
    end_s: float
    duration_s: float
    start_sample: int
    num_samples: int
    sample_rate: int
    snr: float | None
    vad_source: str
    notes: str


@dataclass(frozen=True)
class ShardResult:
    """What a finished shard holds, in counts (its rows go to `manifest/parts/{shard}.parquet`); saved in its
    completion marker. `sources`/`speakers`: the audio files and speakers with at least one segment here."""

    shard: str
    split: str
    holdout: bool
    sha256: str
    num_bytes: int
    num_segments: int
    audio_seconds: float
    sources: tuple[str, ...]
    speakers: tuple[str, ...]
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True)
class WrittenShard:
    """A shard just written: its summary and its segment rows (one shard's worth, sorted by key)."""

    result: ShardResult
    rows: list[SegmentRow]
