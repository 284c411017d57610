"""DuckDB views and macros over a token table agree with pyarrow reading the same files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline.query.table import QueryError, TokenTable, TokenTableNotFoundError, open_token_table, run_query
from token_tables import Partition, write_token_table


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token_table(tmp_path_factory.mktemp("tokens"))


@pytest.fixture
def table(table_dir: Path):  # type: ignore[no-untyped-def]
    with open_token_table(str(table_dir)) as opened:
        yield opened


def arrow_rows(root: Path) -> pa.Table:
    """The reference: every token file read by pyarrow with hive partitions (it skips `_manifest.json`)."""
    return ds.dataset(root, format="parquet", partitioning="hive").to_table()


def as_dict(result: pa.Table, key: str, value: str) -> dict:
    return dict(zip(result.column(key).to_pylist(), result.column(value).to_pylist(), strict=True))


def test_rows_per_speaker_match_pyarrow(table: TokenTable, table_dir: Path) -> None:
    result = run_query(table, "SELECT speaker, count(*) AS n FROM utterances GROUP BY speaker")
    expected = Counter(arrow_rows(table_dir).column("speaker").to_pylist())
    assert as_dict(result, "speaker", "n") == dict(expected)
    assert table.files == 6


def test_hive_partitions_are_typed_columns_and_frames_sum_per_partition(table: TokenTable, table_dir: Path) -> None:
    result = run_query(
        table,
        "SELECT model_version, split, sum(n_frames) AS frames, count(*) AS n FROM tokens GROUP BY ALL "
        "ORDER BY model_version, split",
    )
    assert result.schema.field("model_version").type == pa.int32()  # same type as inside the files
    assert result.schema.field("split").type == pa.string()
    reference = arrow_rows(table_dir).group_by(["model_version", "split"]).aggregate([("n_frames", "sum")])
    expected = {
        (v, s): f
        for v, s, f in zip(
            reference.column("model_version").to_pylist(),
            reference.column("split").to_pylist(),
            reference.column("n_frames_sum").to_pylist(),
            strict=True,
        )
    }
    keys = zip(result["model_version"].to_pylist(), result["split"].to_pylist(), strict=True)
    assert dict(zip(keys, result["frames"].to_pylist(), strict=True)) == expected
    assert set(expected) == {(1, "small"), (1, "medium"), (2, "small")}


def test_only_token_files_are_read(tmp_path: Path) -> None:
    root = write_token_table(tmp_path / "t", [Partition(3, "small", 4, shards=1)])
    pq.write_table(pa.table({"x": [1]}), root / "stray.parquet")  # not model_version=*/split=*/
    (root / "model_version=3" / "split=small" / "notes.txt").write_text("not parquet")
    with open_token_table(str(root)) as table:
        result = run_query(table, "SELECT model_version, count(*) AS n FROM tokens GROUP BY ALL")
    assert result.to_pylist() == [{"model_version": 3, "n": 4}]


def test_distinct_token_values_and_frequencies_match_numpy(table: TokenTable, table_dir: Path) -> None:
    flat = pc.list_flatten(arrow_rows(table_dir).column("tokens")).to_numpy()
    values, counts = np.unique(flat, return_counts=True)
    distinct = run_query(table, "SELECT count(DISTINCT t) AS n FROM (SELECT unnest(tokens) AS t FROM tokens)")
    assert distinct["n"].to_pylist() == [len(values)]
    freq = run_query(table, "SELECT token, count FROM token_frequencies() ORDER BY token")
    assert freq["token"].to_numpy().tolist() == values.tolist()
    assert freq["count"].to_numpy().tolist() == counts.tolist()


def test_utterances_drop_the_token_list_and_derive_counts(table: TokenTable, table_dir: Path) -> None:
    # The same utterance_id appears once per model version, as in real tables.
    result = run_query(table, "SELECT * FROM utterances ORDER BY utterance_id, model_version")
    assert "tokens" not in result.column_names
    reference = arrow_rows(table_dir).sort_by([("utterance_id", "ascending"), ("model_version", "ascending")])
    assert result["utterance_id"].to_pylist() == reference["utterance_id"].to_pylist()
    lengths = pc.list_value_length(reference["tokens"]).to_pylist()
    assert result["n_tokens"].to_pylist() == lengths
    np.testing.assert_allclose(
        result["tokens_per_second"].to_numpy(), np.asarray(lengths) / reference["duration_s"].to_numpy()
    )


def test_frame_macros_equal_numpy_reshape(table: TokenTable) -> None:
    result = run_query(
        table,
        "SELECT tokens, tokens_per_frame AS g, n_frames, token_count(tokens) AS count, "
        "frames(tokens, tokens_per_frame) AS frames, frame(tokens, tokens_per_frame, 1) AS second, "
        "group_tokens(tokens, tokens_per_frame, 2) AS third_group FROM tokens WHERE n_frames >= 2",
    )
    assert result.num_rows > 0
    for row in result.to_pylist():
        grid = np.asarray(row["tokens"]).reshape(row["n_frames"], row["g"])  # frame-major
        assert row["count"] == grid.size
        assert row["frames"] == grid.tolist()
        assert row["second"] == grid[1].tolist()
        assert row["third_group"] == grid[:, 2].tolist()


def test_bad_sql_names_the_query_and_the_views(table: TokenTable) -> None:
    with pytest.raises(QueryError, match=r"(?s)SELEC speaker.*tokens, utterances"):
        run_query(table, "SELEC speaker FROM tokens")
    with pytest.raises(QueryError, match="no_such_column"):
        run_query(table, "SELECT no_such_column FROM utterances")


def test_missing_or_empty_table_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenTableNotFoundError, match=rf"{tmp_path}/missing.*speechtok tokenize"):
        open_token_table(str(tmp_path / "missing"))
    (tmp_path / "empty" / "model_version=1").mkdir(parents=True)
    (tmp_path / "empty" / "model_version=1" / "_manifest.json").write_text("{}")
    with pytest.raises(TokenTableNotFoundError, match="no token files"):
        open_token_table(str(tmp_path / "empty"))


def test_a_damaged_file_is_a_query_error_naming_it(tmp_path: Path) -> None:
    root = write_token_table(tmp_path / "t", [Partition(1, "small", 4, shards=1)])
    (root / "model_version=1" / "split=small" / "small-000009.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(QueryError, match=r"small-000009\.parquet"), open_token_table(str(root)) as table:
        run_query(table, "SELECT count(*) FROM utterances")
