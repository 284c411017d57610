"""Token-table statistics equal the same sums computed with pyarrow; the histogram PNG is a real image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from matplotlib import image

from pipeline.query.histogram import histogram_png
from pipeline.query.stats import TableStats, TokenHistogram, table_stats, token_table_stats
from pipeline.query.table import open_token_table
from token_tables import write_token_table


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token_table(tmp_path_factory.mktemp("tokens"), seed=1)


def reference(root: Path, version: int | None = None) -> pa.Table:
    rows = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    return rows if version is None else rows.filter(pc.field("model_version") == version)


def assert_totals_match(stats: TableStats, rows: pa.Table) -> None:
    tokens = pc.list_value_length(rows["tokens"]).to_numpy()
    assert stats.utterances == rows.num_rows
    assert stats.seconds == pytest.approx(pc.sum(rows["duration_s"]).as_py())
    assert stats.hours == pytest.approx(stats.seconds / 3600)
    assert stats.frames == pc.sum(rows["n_frames"]).as_py()
    assert stats.tokens == tokens.sum()
    assert stats.tokens_per_second == pytest.approx(tokens.sum() / pc.sum(rows["duration_s"]).as_py())
    assert stats.speakers == len(set(rows["speaker"].to_pylist()))
    assert stats.books == len(set(rows["book_id"].to_pylist()))


def test_totals_groups_and_histogram_match_pyarrow(table_dir: Path) -> None:
    rows = reference(table_dir)
    stats = token_table_stats(str(table_dir))
    assert_totals_match(stats, rows)

    for groups, column in ((stats.by_speaker, "speaker"), (stats.by_book, "book_id")):
        expected = rows.group_by(column).aggregate([("duration_s", "sum"), ("duration_s", "count")])
        seconds = dict(zip(expected[column].to_pylist(), expected["duration_s_sum"].to_pylist(), strict=True))
        counts = dict(zip(expected[column].to_pylist(), expected["duration_s_count"].to_pylist(), strict=True))
        assert {g.key: g.utterances for g in groups} == counts
        assert {g.key: g.seconds for g in groups} == pytest.approx(seconds)
        assert [g.seconds for g in groups] == sorted((g.seconds for g in groups), reverse=True)
    assert {g.key: g.utterances for g in stats.by_version_split} == {
        "model_version=1/split=medium": 7,
        "model_version=1/split=small": 12,
        "model_version=2/split=small": 5,
    }
    assert sum(g.tokens for g in stats.by_version_split) == stats.tokens

    values, counts = np.unique(pc.list_flatten(rows["tokens"]).to_numpy(), return_counts=True)
    np.testing.assert_array_equal(stats.histogram.values, values)
    np.testing.assert_array_equal(stats.histogram.counts, counts)
    assert stats.histogram.distinct == len(values)


def test_stats_of_one_model_version(table_dir: Path) -> None:
    with open_token_table(str(table_dir)) as table:
        stats = table_stats(table, model_version=2)
        assert_totals_match(stats, reference(table_dir, 2))
        assert stats.histogram.counts.sum() == stats.tokens
        with pytest.raises(LookupError, match=r"model_version=9; versions: \[1, 2\]"):
            table_stats(table, model_version=9)


def test_entropy_of_a_uniform_histogram_is_log2_of_its_size() -> None:
    histogram = TokenHistogram(values=np.arange(8), counts=np.full(8, 5))
    assert histogram.entropy_bits == pytest.approx(3.0)
    assert TokenHistogram(values=np.zeros(0, np.int64), counts=np.zeros(0, np.int64)).entropy_bits == 0.0


def test_histogram_png_is_an_image() -> None:
    histogram = TokenHistogram(values=np.arange(100), counts=np.arange(1, 101))
    png = histogram_png(histogram, title="t", dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] == 4 * 50 and pixels.shape[1] == 11 * 50
