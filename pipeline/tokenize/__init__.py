"""Corpus tokenization: WebDataset shards → hive-partitioned Parquet token tables with Ray Data (issue 4).

`tokenize_shards` is the job; `read_shard` (CPU decode) and `CodecEncoder` (stateful actor) are its Ray Data
UDFs; `verify_tokens` checks a table against the sharding manifest. `TokenizeConfig` is part of the speechtok
settings, so importing it must stay light: the job and the checker (Ray, torch) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pipeline.tokenize.config import TokenizeConfig

if TYPE_CHECKING:
    from pipeline.tokenize.job import TokenizeSummary, tokenize_shards
    from pipeline.tokenize.verify import VerifyReport, verify_tokens

__all__ = ["TokenizeConfig", "TokenizeSummary", "VerifyReport", "tokenize_shards", "verify_tokens"]
_LAZY = {
    "TokenizeSummary": "pipeline.tokenize.job",
    "tokenize_shards": "pipeline.tokenize.job",
    "VerifyReport": "pipeline.tokenize.verify",
    "verify_tokens": "pipeline.tokenize.verify",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
