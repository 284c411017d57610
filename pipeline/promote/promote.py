"""Move the `production` alias of the codec to a candidate version through the quality gate, and record why.

Every decision (promoted, rejected or forced) is written on the candidate version as `speechtok.promotion.*` tags:
the decision, its reason, who or what decided, when, the version compared with, the evaluation set and the
compared metrics (JSON); a replaced production version gets `speechtok.promotion.replaced_by`.
"""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.tracking import EvaluationRecord, latest_evaluation
from pipeline.promote.gate import GateConfig, GateDecision, apply_gate
from storage.mlflow_io import (
    CANDIDATE_ALIAS,
    CODEC_MODEL_NAME,
    PRODUCTION_ALIAS,
    RegisteredVersion,
    alias_version,
    resolve_version,
    set_alias,
    set_model_version_tags,
)

DEFAULT_EXPERIMENT = EvaluateConfig().experiment
TAG_PREFIX = "speechtok.promotion."
DECISION_TAG = TAG_PREFIX + "decision"  # promoted | rejected | forced
REASON_TAG = TAG_PREFIX + "reason"
GATE_REASON_TAG = TAG_PREFIX + "gate_reason"
GATE_PASSED_TAG = TAG_PREFIX + "gate_passed"
BY_TAG = TAG_PREFIX + "by"
AT_TAG = TAG_PREFIX + "at"
COMPARED_WITH_TAG = TAG_PREFIX + "compared_with"
EVAL_SET_TAG = TAG_PREFIX + "eval_set"
METRICS_TAG = TAG_PREFIX + "metrics"
GATE_CONFIG_TAG = TAG_PREFIX + "gate"
REPLACED_BY_TAG = TAG_PREFIX + "replaced_by"


@dataclass(frozen=True)
class PromotionOutcome:
    """The gate's verdict on a candidate and what was done about it.

    `promoted`: the alias now points at the candidate (by the gate or by `forced`); `previous` is the production
    version before the decision (None: there was none); `reason` is the force reason when forced, else the gate's.
    """

    candidate: RegisteredVersion
    previous: RegisteredVersion | None
    decision: GateDecision
    promoted: bool
    forced: bool
    reason: str
    actor: str
    candidate_evaluation: EvaluationRecord | None
    production_evaluation: EvaluationRecord | None

    @property
    def label(self) -> str:
        """promoted | rejected | forced | unchanged (the candidate already is production)."""
        if self.previous is not None and self.previous.version == self.candidate.version:
            return "unchanged"
        if self.forced:
            return "forced"
        return "promoted" if self.promoted else "rejected"


def default_actor(via: str) -> str:
    """`user@host (via)`: who promoted, for the version tags."""
    return f"{getpass.getuser()}@{socket.gethostname()} ({via})"


def resolve_candidate(candidate: str | None, name: str = CODEC_MODEL_NAME) -> RegisteredVersion:
    """`None` (the version with alias `candidate`), a version number, or a `models:/` URI -> the registered version."""
    if candidate is None:
        found = alias_version(name, CANDIDATE_ALIAS)
        if found is None:
            raise LookupError(
                f"no version of {name} has the alias {CANDIDATE_ALIAS!r}; train one (`speechtok train-codec`) or pass "
                "--candidate VERSION"
            )
        return found
    uri = candidate if candidate.startswith("models:/") else f"models:/{name}/{candidate}"
    return resolve_version(uri)


def _missing_evaluation(version: RegisteredVersion, role: str, eval_set: str | None, shards: str) -> GateDecision:
    where = f" on evaluation set {eval_set}" if eval_set else ""
    return GateDecision(
        False,
        f"{role} {version.model_uri} has no evaluation{where}; run `speechtok evaluate {version.model_uri} --shards "
        f"{shards or 'SHARDS'}` first (or the flow evaluate_and_promote, which does both)",
        [],
        role == "production",
    )


def judge(
    candidate: RegisteredVersion,
    production: RegisteredVersion | None,
    config: GateConfig,
    eval_set: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> tuple[GateDecision, EvaluationRecord | None, EvaluationRecord | None]:
    """The gate on the latest evaluations: the candidate's (on `eval_set` if given) and production's on that set."""
    mine = latest_evaluation(candidate, eval_set, experiment)
    if mine is None:
        return _missing_evaluation(candidate, "candidate", eval_set, ""), None, None
    if production is None:
        return apply_gate(mine.metrics, None, config), mine, None
    theirs = latest_evaluation(production, mine.eval_set, experiment)
    if theirs is None:
        return _missing_evaluation(production, "production", mine.eval_set, mine.shards_url), mine, None
    return apply_gate(mine.metrics, theirs.metrics, config), mine, theirs


def promote(
    candidate: str | None = None,
    config: GateConfig | None = None,
    *,
    actor: str,
    force: bool = False,
    force_reason: str | None = None,
    eval_set: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> PromotionOutcome:
    """Apply the gate to `candidate` (default: `speechtok-codec@candidate`) and move `production` if it passes,
    if there is no production yet, or if `force` (which needs `force_reason`). Records the decision as tags."""
    if force and not (force_reason or "").strip():
        raise ValueError("--force needs --reason TEXT: the reason is recorded on the version for whoever asks later")
    config = config or GateConfig()
    version = resolve_candidate(candidate)
    previous = alias_version(version.name, PRODUCTION_ALIAS)
    if previous is not None and previous.version == version.version:
        decision = GateDecision(True, f"{version.model_uri} already is {PRODUCTION_ALIAS}", [], True)
        return PromotionOutcome(version, previous, decision, False, False, decision.reason, actor, None, None)
    decision, mine, theirs = judge(version, previous, config, eval_set, experiment)
    promoted = decision.passed or force
    outcome = PromotionOutcome(
        candidate=version,
        previous=previous,
        decision=decision,
        promoted=promoted,
        forced=force and not decision.passed,
        reason=(force_reason or "") if force and not decision.passed else decision.reason,
        actor=actor,
        candidate_evaluation=mine,
        production_evaluation=theirs,
    )
    if promoted:
        set_alias(version, PRODUCTION_ALIAS)
        if previous is not None:
            set_model_version_tags(previous, {REPLACED_BY_TAG: version.version})
    set_model_version_tags(version, decision_tags(outcome, config))
    return outcome


def decision_tags(outcome: PromotionOutcome, config: GateConfig) -> dict[str, str]:
    """The `speechtok.promotion.*` tags that record a decision on the candidate version."""
    comparisons = [asdict(c) for c in outcome.decision.comparisons]
    return {
        DECISION_TAG: outcome.label,
        REASON_TAG: outcome.reason,
        GATE_REASON_TAG: outcome.decision.reason,
        GATE_PASSED_TAG: str(outcome.decision.passed).lower(),
        BY_TAG: outcome.actor,
        AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
        COMPARED_WITH_TAG: outcome.previous.version if outcome.previous is not None else "none",
        EVAL_SET_TAG: outcome.candidate_evaluation.eval_set if outcome.candidate_evaluation else "none",
        METRICS_TAG: json.dumps(comparisons),
        GATE_CONFIG_TAG: config.model_dump_json(),
    }
