"""The same queries and statistics on an `s3://` copy of a token table (moto's S3 server on loopback)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.query.stats import token_table_stats
from pipeline.query.table import TokenTableNotFoundError, open_token_table, run_query
from storage.fs import open_location
from storage.settings import S3Settings
from token_tables import write_token_table

pytestmark = pytest.mark.integration

SQL = (
    "SELECT model_version, split, speaker, count(*) AS n, sum(n_frames) AS frames FROM tokens GROUP BY ALL ORDER BY ALL"
)
DISTINCT = "SELECT count(DISTINCT t) AS n FROM (SELECT unnest(tokens) AS t FROM tokens)"


@pytest.fixture(scope="module")
def tables(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, S3Settings]:
    """A local token table and its upload to s3://speechtok/query-test/tokens (manifests included)."""
    local = write_token_table(tmp_path_factory.mktemp("tokens"), seed=3)
    s3 = S3Settings(endpoint_url=s3_endpoint)
    remote = open_location("s3://speechtok/query-test/tokens", s3)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            remote.fs.put_file(str(path), remote.path(path.relative_to(local).as_posix()))
    return local, remote.url, s3


def test_query_on_s3_equals_the_local_query(tables: tuple[Path, str, S3Settings]) -> None:
    local, url, s3 = tables
    with open_token_table(str(local)) as table:
        expected = run_query(table, SQL).to_pylist()
        expected_distinct = run_query(table, DISTINCT).to_pylist()
    with open_token_table(url, s3) as table:
        assert table.files == 6
        assert run_query(table, SQL).to_pylist() == expected
        assert run_query(table, DISTINCT).to_pylist() == expected_distinct
    assert {(r["model_version"], r["split"]) for r in expected} == {(1, "small"), (1, "medium"), (2, "small")}


def test_stats_on_s3_equal_local(tables: tuple[Path, str, S3Settings]) -> None:
    local, url, s3 = tables
    remote, here = token_table_stats(url, s3), token_table_stats(str(local))
    assert (remote.utterances, remote.frames, remote.tokens) == (here.utterances, here.frames, here.tokens)
    assert remote.seconds == pytest.approx(here.seconds)
    assert remote.histogram.counts.tolist() == here.histogram.counts.tolist()


def test_cli_reads_s3_and_writes_the_result_to_s3(tables: tuple[Path, str, S3Settings], s3_endpoint: str) -> None:
    local, url, s3 = tables
    out = "s3://speechtok/query-test/results/r.parquet"
    result = CliRunner().invoke(app, ["query", SQL, "--tokens", url, "--s3-endpoint", s3_endpoint, "-o", out])
    assert result.exit_code == 0, result.output
    location = open_location("s3://speechtok/query-test/results", s3)
    with location.open("r.parquet") as handle:
        written = pq.read_table(handle).to_pylist()
    with open_token_table(str(local)) as table:
        assert written == run_query(table, SQL).to_pylist()


def test_missing_s3_prefix_is_a_clear_error(tables: tuple[Path, str, S3Settings]) -> None:
    _, _, s3 = tables
    with pytest.raises(TokenTableNotFoundError, match="s3://speechtok/no-such-table"):
        open_token_table("s3://speechtok/no-such-table", s3)
