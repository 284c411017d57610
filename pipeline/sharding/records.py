"""Plain records passed between the sharding steps (discover → inspect → plan → write → manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


@dataclass(frozen=True)
class Rejection:
    """One input file that produced no segment, and why."""

    source: str  # audio path relative to the corpus root (also for problems with its JSON)
    stage: Stage
    reason: Reason
    detail: str


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class TimeSpan:
    """[start_s, end_s) in seconds from the start of the source file."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class FilePlan:
    """What the writer will do with one file, decided from its JSON and audio header alone."""

    source: SourceFile
    sample_rate: int
    num_frames: int
    channels: int
    subtype: str
    snr: float | None
    segments: tuple[TimeSpan, ...] | None  # None: decided after decoding by the energy VAD fallback
    holdout: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vad_source(self) -> str:
        return "json" if self.segments is not None else "energy"


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
