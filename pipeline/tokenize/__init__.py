"""Corpus tokenization: WebDataset shards → hive-partitioned Parquet token tables with Ray Data (issue 4).

`tokenize_shards` is the job; `read_shard` (CPU decode) and `CodecEncoder` (stateful actor) are its Ray Data
UDFs; `verify_tokens` checks a table against the sharding manifest.
"""

from pipeline.tokenize.config import TokenizeConfig
from pipeline.tokenize.job import TokenizeSummary, tokenize_shards
from pipeline.tokenize.verify import VerifyReport, verify_tokens

__all__ = ["TokenizeConfig", "TokenizeSummary", "VerifyReport", "tokenize_shards", "verify_tokens"]
