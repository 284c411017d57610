"""Write a LibriLight-shaped sample corpus: `{split}/{speaker}/{book}/{name}.flac` + `{name}.json`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from rich.progress import Progress

from pipeline.sample_corpus import text
from pipeline.sample_corpus.assemble import AssembledAudio, FileLayout, level, trim_bounds
from pipeline.sample_corpus.backends import SpeechBackend, resolve_backend
from pipeline.sample_corpus.config import SampleCorpusConfig
from pipeline.sample_corpus.metadata import book_meta, file_name, librilight_json
from pipeline.sample_corpus.phones import PhoneSpan
from pipeline.sample_corpus.plan import BookPlan, SpeakerPlan, Stream, plan_corpus, stream_rng
from pipeline.sample_corpus.voices import SpeakerVoice

# A sentence that no longer fits is retried this many times as a one-clause sentence before the file closes;
# short files (a small --minutes budget) would otherwise end up with long trailing silences.
_SHORT_SENTENCE_TRIES = 3
# Up to two clauses keeps utterances (one VAD region each) at about 2-9 s, like LibriLight's regions and
# under the sharder's 16 s segment limit.
_MAX_CLAUSES = 2


@dataclass(frozen=True)
class GeneratedFile:
    """One written file pair, paths relative to the output root."""

    audio: str
    json: str
    speaker: str
    book: str
    seconds: float
    speech_seconds: float
    regions: int
    snr: float


@dataclass(frozen=True)
class SampleCorpusSummary:
    """What `generate_sample_corpus` wrote."""

    root: Path
    split: str
    backend: str  # the backend actually used ("espeak" or "synthetic"), after resolving "auto"
    backend_version: str
    speakers: int
    books: int
    files: list[GeneratedFile]

    @property
    def num_files(self) -> int:
        return len(self.files)

    @property
    def total_seconds(self) -> float:
        return sum(item.seconds for item in self.files)

    @property
    def speech_seconds(self) -> float:
        return sum(item.speech_seconds for item in self.files)


@dataclass(frozen=True)
class _Utterance:
    """A synthesised sentence: trimmed, levelled audio [T], its text and its phones timed from audio[0]."""

    audio: np.ndarray
    text: str
    phones: list[PhoneSpan] | None


def _utterance(backend: SpeechBackend, voice: SpeakerVoice, rng: np.random.Generator, max_clauses: int) -> _Utterance:
    """A sentence read by `voice`, trimmed of its edge silences and levelled; empty audio if it was all silence."""
    sentence = text.sentence(rng, max_clauses)
    raw = backend.synthesize(sentence, voice, rng)
    start, end = trim_bounds(raw)
    audio = raw[start:end]
    phones = backend.phones(sentence, voice)
    if phones is not None:  # re-time from the first kept sample (the trimmed lead is gone)
        lead = start / backend.sample_rate
        phones = [PhoneSpan(p.phone, p.start_s - lead, p.end_s - lead) for p in phones]
    return _Utterance(level(audio, voice.gain_db) if len(audio) else audio, sentence, phones)


def synthesize_file(
    backend: SpeechBackend,
    voice: SpeakerVoice,
    target_seconds: float,
    config: SampleCorpusConfig,
    rng: np.random.Generator,
) -> AssembledAudio:
    """Utterances separated by seeded pauses up to `target_seconds`, over a seeded noise floor."""
    layout = FileLayout(config.sample_rate, target_seconds, (config.min_pause_seconds, config.max_pause_seconds), rng)
    misses = 0
    while misses <= _SHORT_SENTENCE_TRIES:
        said = _utterance(backend, voice, rng, max_clauses=_MAX_CLAUSES if misses == 0 else 1)
        if len(said.audio) and layout.fits(said.audio):
            layout.add(said.audio, said.text, said.phones)
            continue
        misses += 1
        if misses > _SHORT_SENTENCE_TRIES and layout.empty and len(said.audio):
            # a file always holds speech, even when its target is shorter than a sentence
            layout.add(said.audio, said.text, said.phones)
    if layout.empty:
        raise RuntimeError(
            f"backend {backend.name} returned only silence for voice {voice.espeak_voice} (speaker "
            f"{voice.speaker_id}); check `{backend.version}` works or use backend='synthetic'"
        )
    noise_dbfs = float(rng.uniform(config.min_noise_dbfs, config.max_noise_dbfs))
    return layout.finish(noise_dbfs)


def _partial(path: Path) -> Path:
    """Temporary sibling: files are written there and renamed, so an interrupted run leaves no half file."""
    return path.with_name(f".{path.name}.partial")


def _write_flac(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    soundfile.write(_partial(path), samples, sample_rate, format="FLAC", subtype="PCM_16")
    os.replace(_partial(path), path)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    _partial(path).write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(_partial(path), path)


def _write_book(
    root: Path,
    config: SampleCorpusConfig,
    speaker: SpeakerPlan,
    book: BookPlan,
    backend: SpeechBackend,
    advance: Callable[[GeneratedFile], None],
) -> list[GeneratedFile]:
    directory = root / config.split / speaker.speaker_id / book.meta.id
    directory.mkdir(parents=True, exist_ok=True)
    # The whole book is synthesised first: its JSON carries the book's total time and section count.
    sections = [
        synthesize_file(
            backend,
            speaker.voice,
            seconds,
            config,
            stream_rng(config.seed, Stream.FILE, speaker.voice.index, int(book.meta.id), number),
        )
        for number, seconds in enumerate(book.section_seconds, start=1)
    ]
    meta = book_meta(book.meta, len(sections), sum(audio.seconds for audio in sections), config.seed)
    written: list[GeneratedFile] = []
    for number, audio in enumerate(sections, start=1):
        stem = file_name(book.meta, number)
        flac, metadata = directory / f"{stem}.flac", directory / f"{stem}.json"
        _write_flac(flac, audio.samples, config.sample_rate)
        _write_json(
            metadata,
            librilight_json(speaker.speaker_id, meta, audio.snr, audio.voice_activity, audio.utterances),
        )
        item = GeneratedFile(
            audio=flac.relative_to(root).as_posix(),
            json=metadata.relative_to(root).as_posix(),
            speaker=speaker.speaker_id,
            book=book.meta.id,
            seconds=audio.seconds,
            speech_seconds=audio.speech_seconds,
            regions=len(audio.voice_activity),
            snr=audio.snr,
        )
        written.append(item)
        advance(item)
    return written


def generate_sample_corpus(
    out_dir: Path,
    config: SampleCorpusConfig | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    on_file: Callable[[GeneratedFile], None] | None = None,
) -> SampleCorpusSummary:
    """Write a LibriLight-shaped corpus under `out_dir/{config.split}`; silent unless `progress` is set.

    The same config (seed included) gives byte-identical FLAC and JSON files with the same backend version.
    `on_file` is called after each file pair is written. An existing non-empty split folder is refused unless
    `overwrite`, which deletes that split folder first (so no file of another seed survives in it).
    """
    config = config or SampleCorpusConfig()
    root = Path(out_dir)
    split_dir = root / config.split
    if split_dir.exists() and any(split_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{split_dir} already holds files; choose an empty output folder or pass overwrite=True "
                f"(--overwrite) to replace that split"
            )
        shutil.rmtree(split_dir)
    backend = resolve_backend(config.backend, config.sample_rate)
    plan = plan_corpus(config)

    files: list[GeneratedFile] = []
    with Progress(disable=not progress) as bar:
        task = bar.add_task(f"sample corpus ({backend.name})", total=plan.num_files)

        def advance(item: GeneratedFile) -> None:
            bar.advance(task)
            if on_file is not None:
                on_file(item)

        for speaker in plan.speakers:
            for book in speaker.books:
                files.extend(_write_book(root, config, speaker, book, backend, advance))
    return SampleCorpusSummary(
        root=root,
        split=config.split,
        backend=backend.name,
        backend_version=backend.version,
        speakers=len(plan.speakers),
        books=sum(len(speaker.books) for speaker in plan.speakers),
        files=files,
    )
