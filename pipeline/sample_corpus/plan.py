"""What a sample corpus will contain, decided up front from the config and seed alone.

Every random choice draws from its own PCG64 stream keyed by (seed, purpose, indices), so one speaker's or
file's content does not depend on how many others come before it or on the order they are generated in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from pipeline.sample_corpus.config import SampleCorpusConfig
from pipeline.sample_corpus.metadata import BookMeta, make_book
from pipeline.sample_corpus.voices import SpeakerVoice, speaker_voice

# LibriLight ids: speakers are LibriVox reader ids (up to ~14k), books LibriVox project ids (up to ~20k+).
_SPEAKER_ID_RANGE = (10, 14_000)
_BOOK_ID_RANGE = (100, 60_000)


class Stream(IntEnum):
    """Purpose keys for `stream_rng`; append only, or existing seeds change meaning."""

    IDS = 0
    SPEAKER = 1
    BOOK = 2
    FILE = 3


def stream_rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(stream), *keys])))


@dataclass(frozen=True)
class BookPlan:
    meta: BookMeta
    section_seconds: list[float]  # target length of section 1, 2, ... (one file each)


@dataclass(frozen=True)
class SpeakerPlan:
    voice: SpeakerVoice
    books: list[BookPlan]

    @property
    def speaker_id(self) -> str:
        return self.voice.speaker_id


@dataclass(frozen=True)
class CorpusPlan:
    speakers: list[SpeakerPlan]

    @property
    def num_files(self) -> int:
        return sum(len(book.section_seconds) for speaker in self.speakers for book in speaker.books)

    @property
    def planned_seconds(self) -> float:
        return sum(sum(book.section_seconds) for speaker in self.speakers for book in speaker.books)


def file_lengths(budget: float, shortest: float, longest: float, rng: np.random.Generator) -> list[float]:
    """Split `budget` seconds into file lengths in [shortest, longest] (one shorter file if the budget is)."""
    lengths: list[float] = []
    remaining = budget
    while remaining > 1e-9:
        # The last file takes the rest, so the total is honoured; earlier ones never leave it shorter than
        # `shortest`.
        last = remaining <= longest
        length = remaining if last else min(float(rng.uniform(shortest, longest)), remaining - shortest)
        lengths.append(round(length, 3))
        remaining -= length
    return lengths


def plan_corpus(config: SampleCorpusConfig) -> CorpusPlan:
    ids_rng = stream_rng(config.seed, Stream.IDS)
    low, high = _SPEAKER_ID_RANGE
    speaker_ids = np.sort(ids_rng.choice(np.arange(low, high), size=config.speakers, replace=False))
    low, high = _BOOK_ID_RANGE
    book_count = config.speakers * config.books_per_speaker
    if book_count > high - low:
        raise ValueError(
            f"speakers x books_per_speaker = {book_count} exceeds the {high - low} book ids available; "
            f"lower --speakers or books_per_speaker"
        )
    book_ids = ids_rng.choice(np.arange(low, high), size=book_count, replace=False)
    budget = config.total_seconds / config.speakers

    speakers: list[SpeakerPlan] = []
    for index, speaker_id in enumerate(speaker_ids):
        rng = stream_rng(config.seed, Stream.SPEAKER, index)
        voice = speaker_voice(str(speaker_id), index, rng)
        lengths = file_lengths(budget, config.min_file_seconds, config.max_file_seconds, rng)
        books: list[BookPlan] = []
        for slot in range(min(config.books_per_speaker, len(lengths))):
            book_id = int(book_ids[index * config.books_per_speaker + slot])
            meta = make_book(str(book_id), stream_rng(config.seed, Stream.BOOK, book_id))
            # Files rotate over the speaker's books, as a reader alternating between projects.
            books.append(BookPlan(meta=meta, section_seconds=lengths[slot :: config.books_per_speaker]))
        speakers.append(SpeakerPlan(voice=voice, books=books))
    return CorpusPlan(speakers=speakers)
