"""Corpus statistics of a token table: audio hours, token counts and rates, per split/speaker/book, and the
token-value histogram. Everything is one aggregate query each over the `utterances`/`tokens` views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.query.table import TokenTable, open_token_table
from storage.settings import S3Settings


@dataclass(frozen=True)
class GroupStats:
    """Totals of one group (a split, speaker or book)."""

    key: str
    utterances: int
    seconds: float
    tokens: int
    speakers: int
    books: int


@dataclass(frozen=True)
class TokenHistogram:
    """How often each token value occurs: `values` [V] ascending, `counts` [V] (only values that occur)."""

    values: np.ndarray
    counts: np.ndarray

    @property
    def distinct(self) -> int:
        return int(self.values.shape[0])

    @property
    def entropy_bits(self) -> float:
        """Unigram entropy in bits per token (the cost of coding tokens one by one, with no context)."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        p = self.counts / total
        return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class TableStats:
    url: str
    model_version: int | None  # the version the stats were restricted to, None for all rows
    utterances: int
    seconds: float
    frames: int
    tokens: int
    speakers: int
    books: int
    by_version_split: list[GroupStats]  # key "model_version=V/split=S"
    by_speaker: list[GroupStats]  # most audio first
    by_book: list[GroupStats]
    histogram: TokenHistogram

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def table_stats(table: TokenTable, model_version: int | None = None) -> TableStats:
    """Totals, groups and the token histogram of `table` (only rows of `model_version` when given).

    Raises LookupError, listing the versions present, when `model_version` has no rows.
    """
    where = "" if model_version is None else f"WHERE model_version = {int(model_version)}"
    con = table.connection
    if model_version is not None:
        versions = [v for (v,) in con.sql("SELECT DISTINCT model_version FROM utterances ORDER BY 1").fetchall()]
        if model_version not in versions:
            raise LookupError(f"{table.url} has no rows of model_version={model_version}; versions: {versions}")
    totals = con.sql(
        "SELECT count(*), coalesce(sum(duration_s), 0), coalesce(sum(n_frames), 0), coalesce(sum(n_tokens), 0), "
        f"count(DISTINCT speaker), count(DISTINCT book_id) FROM utterances {where}"
    ).fetchall()
    # An aggregate without GROUP BY returns exactly one row, also over no rows.
    rows, seconds, frames, tokens, speakers, books = totals[0]
    histogram = con.sql(
        f"SELECT token, count(*) AS n FROM (SELECT unnest(tokens) AS token FROM tokens {where}) GROUP BY token "
        "ORDER BY token"
    ).fetchnumpy()
    return TableStats(
        url=table.url,
        model_version=model_version,
        utterances=int(rows),
        seconds=float(seconds),
        frames=int(frames),
        tokens=int(tokens),
        speakers=int(speakers),
        books=int(books),
        by_version_split=_groups(table, "'model_version=' || model_version || '/split=' || split", where, "key"),
        by_speaker=_groups(table, "speaker", where, "seconds DESC, key"),
        by_book=_groups(table, "book_id", where, "seconds DESC, key"),
        histogram=TokenHistogram(
            values=np.asarray(histogram["token"], dtype=np.int64),
            counts=np.asarray(histogram["n"], dtype=np.int64),
        ),
    )


def _groups(table: TokenTable, key: str, where: str, order: str) -> list[GroupStats]:
    rows = table.connection.sql(
        f"SELECT {key} AS key, count(*), sum(duration_s) AS seconds, sum(n_tokens), count(DISTINCT speaker), "
        f"count(DISTINCT book_id) FROM utterances {where} GROUP BY ALL ORDER BY {order}"
    ).fetchall()
    return [GroupStats(str(k), int(n), float(s), int(t), int(p), int(b)) for k, n, s, t, p, b in rows]


def token_table_stats(url: str, s3: S3Settings | None = None, model_version: int | None = None) -> TableStats:
    """`table_stats` of the token table at `url` (opened and closed here; for flows)."""
    with open_token_table(url, s3) as table:
        return table_stats(table, model_version)
