"""Shared test-data builders: small generated corpora written to a test's tmp_path (issue 2)."""

from __future__ import annotations

from pathlib import Path

from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus
from pipeline.sample_corpus.config import Backend


def make_sample_corpus(
    tmp_path: Path,
    speakers: int = 3,
    minutes: float = 0.75,
    seed: int = 0,
    backend: Backend = "synthetic",
    *,
    split: str = "small",
    books_per_speaker: int = 1,
    min_file_seconds: float = 10.0,
    max_file_seconds: float = 20.0,
) -> Path:
    """Write a tiny LibriLight-shaped corpus under `tmp_path / "corpus"` and return that root.

    Defaults: 3 speakers x 15 s of speech-like audio (one file each) in about a second. The synthetic backend
    is the default so results do not depend on whether espeak-ng is installed; pass backend="espeak" or "auto".
    """
    root = tmp_path / "corpus"
    config = SampleCorpusConfig(
        speakers=speakers,
        minutes=minutes,
        seed=seed,
        split=split,
        books_per_speaker=books_per_speaker,
        min_file_seconds=min_file_seconds,
        max_file_seconds=max_file_seconds,
        backend=backend,
    )
    generate_sample_corpus(root, config)
    return root
