"""The quality gate: pure decisions on metric dicts, then `speechtok promote` against a SQLite MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from evaluation_helpers import (
    BASE_METRICS,
    alias_target,
    log_evaluation_run,
    register_version,
    use_registry,
    version_tags,
)
from flows.cli import app
from pipeline.promote.gate import GateConfig, apply_gate
from pipeline.promote.promote import promote

BETTER = {**BASE_METRICS, "mel_l1": 0.9, "si_sdr": 6.0}
WORSE = {**BASE_METRICS, "mel_l1": 0.9, "pesq_wb": 2.0}  # primary better, but PESQ drops 0.5 > 0.05


# --- the rule ---------------------------------------------------------------------------------------------------
def test_gate_passes_a_better_candidate() -> None:
    decision = apply_gate(BETTER, BASE_METRICS, GateConfig())
    assert decision.passed and decision.has_production
    primary = decision.comparisons[0]
    assert primary.metric == "mel_l1" and primary.primary and primary.improvement == pytest.approx(0.1)


def test_gate_refuses_a_regression_beyond_tolerance_and_names_it() -> None:
    decision = apply_gate(WORSE, BASE_METRICS, GateConfig())
    assert not decision.passed
    assert "pesq_wb" in decision.reason and "tolerance 0.05" in decision.reason


def test_gate_allows_a_regression_within_tolerance() -> None:
    slight = {**BETTER, "stoi": BASE_METRICS["stoi"] - 0.005}
    assert apply_gate(slight, BASE_METRICS, GateConfig()).passed


def test_gate_needs_the_primary_metric_to_improve() -> None:
    decision = apply_gate(dict(BASE_METRICS), BASE_METRICS, GateConfig())
    assert not decision.passed and "primary metric not better" in decision.reason
    config = GateConfig(primary_metric="si_sdr", min_primary_improvement=2.0)
    assert not apply_gate(BETTER, BASE_METRICS, config).passed  # +1 dB < 2 dB
    assert apply_gate({**BETTER, "si_sdr": 7.5}, BASE_METRICS, config).passed


def test_gate_passes_without_production_and_refuses_missing_candidate_metrics() -> None:
    assert apply_gate(BASE_METRICS, None, GateConfig()).passed
    no_pesq = {k: v for k, v in BETTER.items() if k != "pesq_wb"}
    decision = apply_gate(no_pesq, BASE_METRICS, GateConfig())
    assert not decision.passed and "pesq_wb: candidate has no value" in decision.reason


def test_gate_config_refuses_unknown_metrics() -> None:
    with pytest.raises(ValidationError, match="no known direction"):
        GateConfig(primary_metric="loudness")
    assert GateConfig(primary_metric="loudness", higher_is_better={"loudness": True}).direction("loudness")


# --- promotion through the registry ------------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> Path:
    use_registry(tmp_path)
    return tmp_path


def promote_cli(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["promote", "--storage-root", str(root), *args])


def test_promote_moves_the_alias_to_a_better_candidate(registry: Path) -> None:
    production = register_version("production")
    candidate = register_version("candidate")
    log_evaluation_run(production, BASE_METRICS)
    log_evaluation_run(candidate, BETTER)
    result = promote_cli(registry)
    assert result.exit_code == 0, result.output
    assert alias_target("production") == candidate.version
    assert "quality gate" in result.output and "promoted" in result.output
    tags = version_tags(candidate)
    assert tags["speechtok.promotion.decision"] == "promoted"
    assert tags["speechtok.promotion.compared_with"] == production.version
    assert "speechtok promote" in tags["speechtok.promotion.by"]
    compared = {row["metric"]: row for row in json.loads(tags["speechtok.promotion.metrics"])}
    assert compared["mel_l1"]["candidate"] == 0.9 and compared["mel_l1"]["production"] == 1.0
    assert version_tags(production)["speechtok.promotion.replaced_by"] == candidate.version


def test_promote_refuses_a_worse_candidate_and_keeps_production(registry: Path) -> None:
    production = register_version("production")
    candidate = register_version("candidate")
    log_evaluation_run(production, BASE_METRICS)
    log_evaluation_run(candidate, WORSE)
    result = promote_cli(registry, "--candidate", candidate.version)
    assert result.exit_code == 1
    assert "rejected" in result.output and "pesq_wb" in result.output
    assert alias_target("production") == production.version
    tags = version_tags(candidate)
    assert tags["speechtok.promotion.decision"] == "rejected"
    assert tags["speechtok.promotion.gate_passed"] == "false"


def test_promote_without_production_promotes_the_candidate(registry: Path) -> None:
    candidate = register_version("candidate")
    log_evaluation_run(candidate, BASE_METRICS)
    result = promote_cli(registry)
    assert result.exit_code == 0, result.output
    assert alias_target("production") == candidate.version
    assert version_tags(candidate)["speechtok.promotion.compared_with"] == "none"


def test_force_with_reason_overrides_the_gate_and_records_the_reason(registry: Path) -> None:
    production = register_version("production")
    candidate = register_version("candidate")
    log_evaluation_run(production, BASE_METRICS)
    log_evaluation_run(candidate, WORSE)
    assert promote_cli(registry, "--force").exit_code == 2  # no --reason: refused, nothing changes
    assert alias_target("production") == production.version
    result = promote_cli(registry, "--force", "--reason", "PESQ regression accepted for the 2x bitrate cut")
    assert result.exit_code == 0, result.output
    assert alias_target("production") == candidate.version
    tags = version_tags(candidate)
    assert tags["speechtok.promotion.decision"] == "forced"
    assert tags["speechtok.promotion.reason"] == "PESQ regression accepted for the 2x bitrate cut"
    assert "pesq_wb" in tags["speechtok.promotion.gate_reason"]
    assert "--force" in tags["speechtok.promotion.by"]


def test_gate_options_change_the_verdict(registry: Path) -> None:
    production = register_version("production")
    candidate = register_version("candidate")
    log_evaluation_run(production, BASE_METRICS)
    log_evaluation_run(candidate, WORSE)
    result = promote_cli(registry, "--tolerance", "pesq_wb=1.0")
    assert result.exit_code == 0, result.output
    assert promote_cli(registry, "--tolerance", "pesq_wb").exit_code == 2


def test_missing_evaluations_fail_with_the_command_to_run(registry: Path) -> None:
    production = register_version("production")
    candidate = register_version("candidate")
    log_evaluation_run(candidate, BETTER)
    outcome = promote(actor="test")
    assert not outcome.promoted
    assert f"speechtok evaluate {production.model_uri} --shards /shards" in outcome.reason
    log_evaluation_run(production, BASE_METRICS, eval_set="another-set")  # not comparable: other clips
    assert not promote(actor="test").promoted
    assert alias_target("production") == production.version


def test_no_candidate_alias_exits_2_with_a_fix(registry: Path) -> None:
    register_version("production")
    result = promote_cli(registry)
    assert result.exit_code == 2
    assert "train-codec" in result.output
