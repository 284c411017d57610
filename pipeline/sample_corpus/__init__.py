"""Generate a small LibriLight-shaped corpus (espeak-ng or built-in synthetic speech) for tests and demos."""

from pipeline.sample_corpus.backends import BackendUnavailableError, resolve_backend
from pipeline.sample_corpus.config import Backend, SampleCorpusConfig
from pipeline.sample_corpus.corpus import GeneratedFile, SampleCorpusSummary, generate_sample_corpus

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "GeneratedFile",
    "SampleCorpusConfig",
    "SampleCorpusSummary",
    "generate_sample_corpus",
    "resolve_backend",
]
