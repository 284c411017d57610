"""The Prefect flow `evaluate_and_promote` on sharded sample audio with registered tiny codecs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation_helpers import alias_target, version_tags
from flows import evaluate as evaluate_flow
from flows.evaluate import evaluate_and_promote
from flows.settings import load_settings
from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.tracking import latest_evaluation
from tokenize_helpers import register_tiny_codec

pytestmark = pytest.mark.integration

# One 3 s clip per evaluation: the gate logic is what is under test, and random codecs decode slowly on CPU.
QUICK = EvaluateConfig(max_clips=1, max_seconds=3.0)


def test_first_candidate_is_promoted_when_there_is_no_production(
    sharded_sample_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = register_tiny_codec(tmp_path, alias="candidate", seed=0)
    settings = load_settings(overrides={"storage_root": str(tmp_path)})
    emitted: list[tuple[str, dict[str, str]]] = []
    monkeypatch.setattr(evaluate_flow, "emit_event", lambda event, resource, **_: emitted.append((event, resource)))
    outcome = evaluate_and_promote(str(sharded_sample_corpus), evaluate=QUICK, settings=settings)
    # The event the k8s tokenize deployment's trigger waits for (infra/k8s/prefect.yaml).
    assert emitted == [
        (
            evaluate_flow.PROMOTED_EVENT,
            {
                "prefect.resource.id": "speechtok.model.speechtok-codec",
                "speechtok.model.version": str(candidate.version),
                "speechtok.model.uri": candidate.model_uri,
            },
        )
    ]
    assert outcome.promoted and outcome.label == "promoted" and outcome.previous is None
    assert alias_target("production") == candidate.version
    tags = version_tags(candidate)
    assert tags["speechtok.promotion.decision"] == "promoted"
    assert tags["speechtok.promotion.by"].startswith("prefect flow evaluate_and_promote")
    assert tags["speechtok.promotion.eval_set"] == tags["speechtok.eval.set"]


def test_production_is_evaluated_on_the_same_set_and_an_equal_candidate_is_refused(
    sharded_sample_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = register_tiny_codec(tmp_path, alias="production", seed=0)
    candidate = register_tiny_codec(tmp_path, alias="candidate", seed=0)  # same weights: no improvement
    settings = load_settings(overrides={"storage_root": str(tmp_path)})
    emitted: list[str] = []
    monkeypatch.setattr(evaluate_flow, "emit_event", lambda event, **_: emitted.append(event))
    outcome = evaluate_and_promote(str(sharded_sample_corpus), evaluate=QUICK, settings=settings)
    assert emitted == []  # a refusal starts no tokenization
    assert not outcome.promoted and outcome.label == "rejected"
    assert "mel_l1: primary metric not better" in outcome.reason
    assert alias_target("production") == production.version
    record = latest_evaluation(production)
    assert record is not None and outcome.candidate_evaluation is not None
    assert record.eval_set == outcome.candidate_evaluation.eval_set
    assert record.metrics["mel_l1"] == pytest.approx(outcome.candidate_evaluation.metrics["mel_l1"])
    assert version_tags(candidate)["speechtok.promotion.decision"] == "rejected"
