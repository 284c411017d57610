"""Query, stats and detokenize on a table written by the real tokenization job (Ray Data, built once)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
import soundfile
from typer.testing import CliRunner

from flows.cli import app
from pipeline.query.stats import token_table_stats
from pipeline.query.table import open_token_table, run_query
from pipeline.tokenize import TokenizeConfig, tokenize_shards
from storage.mlflow_io import use_tracking_uri
from tokenize_helpers import register_tiny_codec
from training.codec import Codec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

# One 0.5-CPU actor leaves room for the decoding tasks on the 2-CPU session cluster.
ONE = TokenizeConfig(workers=1, cpus_per_worker=0.5, decode_cpus=0.5, batch_seconds=30)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    previous = mlflow.get_tracking_uri()
    root = tmp_path_factory.mktemp("query-mlflow")
    register_tiny_codec(root)
    yield root
    use_tracking_uri(previous)


@pytest.fixture(scope="module")
def table_dir(registry: Path, sharded_sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    out = tmp_path_factory.mktemp("query-tokens")
    tokenize_shards(str(sharded_sample_corpus), str(out), "models:/speechtok-codec@production", config=ONE)
    return out


def arrow_rows(root: Path) -> pa.Table:
    return ds.dataset(root, format="parquet", partitioning="hive").to_table()


def test_query_counts_match_pyarrow(table_dir: Path) -> None:
    rows = arrow_rows(table_dir)
    with open_token_table(str(table_dir)) as table:
        per_speaker = run_query(table, "SELECT speaker, count(*) AS n FROM utterances GROUP BY speaker")
        frames = run_query(table, "SELECT model_version, split, sum(n_frames) AS f FROM tokens GROUP BY ALL")
        distinct = run_query(table, "SELECT count(DISTINCT t) AS n FROM (SELECT unnest(tokens) AS t FROM tokens)")
    counts = dict(zip(per_speaker["speaker"].to_pylist(), per_speaker["n"].to_pylist(), strict=True))
    assert counts == dict(Counter(rows["speaker"].to_pylist()))
    expected_frames = rows.group_by(["model_version", "split"]).aggregate([("n_frames", "sum")])
    got = zip(frames["model_version"].to_pylist(), frames["split"].to_pylist(), frames["f"].to_pylist(), strict=True)
    want = zip(*(expected_frames[c].to_pylist() for c in ("model_version", "split", "n_frames_sum")), strict=True)
    assert sorted(got) == sorted(want)
    assert set(frames["model_version"].to_pylist()) == {1}
    assert distinct["n"].to_pylist() == [len(np.unique(pc.list_flatten(rows["tokens"]).to_numpy()))]


def test_stats_totals_match_pyarrow(table_dir: Path, registry: Path) -> None:
    rows = arrow_rows(table_dir)
    stats = token_table_stats(str(table_dir))
    assert stats.utterances == rows.num_rows
    assert stats.seconds == pytest.approx(pc.sum(rows["duration_s"]).as_py())
    assert stats.tokens == pc.sum(pc.list_value_length(rows["tokens"])).as_py()
    assert stats.speakers == len(set(rows["speaker"].to_pylist()))
    codec = Codec.load(registry / "codec")
    assert stats.tokens_per_second >= codec.tokens_per_second  # whole frames cover each segment's end


def test_detokenize_sql_rows_decode_to_their_durations(table_dir: Path, registry: Path, tmp_path: Path) -> None:
    sql = "SELECT * FROM tokens ORDER BY duration_s, utterance_id LIMIT 2"  # the shortest: decoding costs CPU time
    result = CliRunner().invoke(
        app, ["detokenize", str(table_dir), "--sql", sql, "-o", str(tmp_path), "--storage-root", str(registry)]
    )
    assert result.exit_code == 0, result.output
    codec = Codec.load(registry / "codec")
    with open_token_table(str(table_dir)) as table:
        rows = run_query(table, sql).to_pylist()
    for row in rows:
        audio, rate = soundfile.read(tmp_path / f"{row['utterance_id']}.wav", dtype="float32")
        assert rate == row["sample_rate"] and audio.shape == (row["num_samples"],)
        tokens = np.asarray(row["tokens"], dtype=np.uint16).reshape(row["n_frames"], row["tokens_per_frame"])
        expected = codec.decode(tokens, num_samples=row["num_samples"], sample_rate=row["sample_rate"]).numpy()
        np.testing.assert_array_equal(audio, expected)
