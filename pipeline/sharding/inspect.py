"""Decide what to do with one file from its JSON sidecar and audio header (no full decode)."""

from __future__ import annotations

import io
import json
import math

import soundfile

from pipeline.sharding.config import ShardConfig
from pipeline.sharding.records import FilePlan, Reason, Rejection, SourceFile, Stage, pack_spans
from pipeline.sharding.segments import merge_regions, parse_voice_activity
from storage.fs import Location

# FLAC STREAMINFO and a WAV header both sit in the first few KiB; reading 64 KiB covers any metadata blocks
# before the audio without pulling whole files over S3 just to plan.
_HEADER_BYTES = 64 * 1024


def inspect_file(location: Location, source: SourceFile, config: ShardConfig) -> FilePlan | Rejection:
    """Read `source`'s JSON and audio header; return its plan, or the reason it cannot be sharded.

    Transient I/O errors (network, throttling) propagate so the calling task can retry; everything that is
    wrong with the file itself becomes a `Rejection`.
    """
    notes: list[str] = []
    metadata = _read_metadata(location, source)
    if isinstance(metadata, Rejection):
        return metadata

    header = _read_header(location, source)
    if isinstance(header, Rejection):
        return header
    if header.frames <= 0:
        return Rejection(source.audio, Stage.AUDIO, Reason.EMPTY_AUDIO, f"{source.audio} has no samples")
    if header.channels > 1:
        notes.append(f"downmixed {header.channels} channels to mono")
    if header.samplerate != config.expected_sample_rate:
        notes.append(f"sample rate {header.samplerate} Hz kept (expected {config.expected_sample_rate} Hz)")
    speaker = str(metadata.get("speaker", source.speaker))
    if speaker != source.speaker:
        notes.append(f"JSON speaker {speaker!r} differs from directory {source.speaker!r}; directory used")

    duration_s = header.frames / header.samplerate
    voice_activity = metadata.get("voice_activity")
    voiced = None
    if voice_activity is None or voice_activity == []:
        if config.vad_fallback == "reject":
            return Rejection(
                source.audio,
                Stage.METADATA,
                Reason.NO_VOICE_ACTIVITY,
                f"{source.json} has no voice_activity; add it or shard with --vad-fallback energy",
            )
        notes.append("voice_activity missing; energy VAD used")
    else:
        try:
            regions = parse_voice_activity(voice_activity, duration_s, source.json)
        except ValueError as error:
            return Rejection(source.audio, Stage.METADATA, Reason.MALFORMED_JSON, str(error))
        if not regions:
            return Rejection(
                source.audio, Stage.METADATA, Reason.NO_SPEECH, f"{source.json}: voice_activity is past the audio end"
            )
        voiced = pack_spans(merge_regions(regions, config.max_seconds))

    return FilePlan(
        source=source,
        sample_rate=header.samplerate,
        num_frames=header.frames,
        channels=header.channels,
        subtype=header.subtype,
        snr=_snr(metadata.get("snr")),
        voiced=voiced,
        notes=tuple(notes),
    )


def _read_metadata(location: Location, source: SourceFile) -> dict[str, object] | Rejection:
    try:
        raw = location.read_bytes(source.json)
    except FileNotFoundError:
        return Rejection(source.audio, Stage.METADATA, Reason.MISSING_JSON, f"{source.json} not found")
    try:
        metadata = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Rejection(source.audio, Stage.METADATA, Reason.MALFORMED_JSON, f"{source.json}: {error}")
    if not isinstance(metadata, dict):
        return Rejection(
            source.audio, Stage.METADATA, Reason.MALFORMED_JSON, f"{source.json}: top level is not an object"
        )
    return metadata


def _read_header(location: Location, source: SourceFile) -> soundfile._SoundFileInfo | Rejection:
    try:
        with location.open(source.audio) as handle:
            # A WAV header's frame count is only trustworthy against the whole file, and WAV is the rare case.
            head = handle.read() if source.audio.endswith(".wav") else handle.read(_HEADER_BYTES)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        return Rejection(source.audio, Stage.AUDIO, Reason.UNREADABLE, f"{source.audio}: {error}")
    if not head:
        return Rejection(source.audio, Stage.AUDIO, Reason.EMPTY_AUDIO, f"{source.audio} is an empty file")
    try:
        return soundfile.info(io.BytesIO(head))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        return Rejection(source.audio, Stage.AUDIO, Reason.CORRUPT_AUDIO, f"{source.audio}: {error}")


def _snr(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
