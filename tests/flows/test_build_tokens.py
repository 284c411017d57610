"""The main job end to end (issue 5): `speechtok demo` runs the Prefect flow `build_tokens` on a tiny corpus and
leaves a production codec, a verified token table and a completed flow run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterId
from typer.testing import CliRunner

from flows.cli import app
from pipeline.tokenize import verify_tokens
from storage.mlflow_io import CODEC_MODEL_NAME, PRODUCTION_ALIAS, use_tracking_uri

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "ray_local")]


async def _build_tokens_run_states() -> list[str]:
    """States of every `build_tokens` flow run the session's Prefect API knows."""
    async with get_client() as client:
        flow = await client.read_flow_by_name("build_tokens")
        runs = await client.read_flow_runs(flow_filter=FlowFilter(id=FlowFilterId(any_=[flow.id])))
        return [run.state.type.value for run in runs if run.state is not None]


def test_demo_runs_the_whole_pipeline_as_one_flow(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    args = ["demo", "--workdir", str(workdir), "--speakers", "3", "--minutes", "1"]
    result = CliRunner().invoke(app, [*args, "--encoder-steps", "2", "--codec-steps", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    for where in ("token table", "MLflow UI", "Prefect UI", "speechtok query"):
        assert where in result.output

    use_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    production = MlflowClient().get_model_version_by_alias(CODEC_MODEL_NAME, PRODUCTION_ALIAS)
    assert str(production.version) == "1"
    table = workdir / "tokens" / f"model_version={production.version}"
    segments = pq.read_table(workdir / "shards" / "manifest" / "segments.parquet")
    rows = ds.dataset(workdir / "tokens", format="parquet", partitioning="hive").to_table(columns=["utterance_id"])
    assert table.is_dir() and rows.num_rows == segments.num_rows
    assert verify_tokens(str(workdir / "tokens"), str(workdir / "shards")).ok
    assert (workdir / "token_histogram.png").read_bytes().startswith(b"\x89PNG")

    assert asyncio.run(_build_tokens_run_states()) == ["COMPLETED"]
