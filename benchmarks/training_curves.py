"""Longer `tiny` training on the sample corpus: stage-1 loss and stage-2 MR-STFT loss over steps.

Generates a sample corpus, shards it, trains stage 1 and then stage 2 (`tiny`, 2 CPU Ray workers) through the
same `training.launch.train` the CLI uses, reads the loss curves back from MLflow and writes
`docs/training_curves.png` (used in the README) plus the first/last values. Not part of the test suite.

    .venv/bin/python benchmarks/training_curves.py [--steps1 200] [--steps2 200] [--minutes 6] [--out docs]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mlflow.tracking import MlflowClient

from flows.settings import load_settings
from flows.shard import run_shard_corpus
from flows.train import build_job
from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus
from pipeline.sharding.config import ShardConfig
from storage.mlflow_io import ENCODER_MODEL_NAME
from training.launch import Scaling, train


def history(client: MlflowClient, run_id: str, key: str) -> tuple[list[int], list[float]]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
    return [p.step for p in points], [p.value for p in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps1", type=int, default=200)
    parser.add_argument("--steps2", type=int, default=150)
    parser.add_argument("--seconds1", type=float, default=4.0, help="stage-1 crop")
    parser.add_argument("--seconds2", type=float, default=1.6, help="stage-2 crop (discriminators are the cost)")
    parser.add_argument("--minutes", type=float, default=6.0, help="sample-corpus audio")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        root = Path(tmp)
        corpus = root / "corpus"
        generate_sample_corpus(corpus, SampleCorpusConfig(speakers=6, minutes=args.minutes, seed=0))
        run_shard_corpus(
            str(corpus), str(root / "shards"), ShardConfig(target_shard_bytes=2_000_000), show_progress=False
        )
        curves = {}
        for stage, steps, seconds in (("encoder", args.steps1, args.seconds1), ("codec", args.steps2, args.seconds2)):
            settings = load_settings(
                None,
                {
                    "storage_root": str(root),
                    "train": {
                        "max_steps": steps,
                        "batch_size": 4,
                        "max_seconds": seconds,
                        "checkpoint_every": steps,
                        "log_every": 5,
                        "warmup_steps": steps // 10,
                        "lr": 1e-3,
                    },
                },
            )
            encoder = f"models:/{ENCODER_MODEL_NAME}@candidate" if stage == "codec" else None
            job = build_job(stage, str(root / "shards"), "tiny", settings, encoder_uri=encoder)  # type: ignore[arg-type]
            started = time.perf_counter()
            result = train(job, Scaling(workers=2))
            elapsed = time.perf_counter() - started
            key = "loss" if stage == "encoder" else "stft"
            client = MlflowClient(settings.tracking_uri())
            curves[stage] = history(client, result.run_id, key)
            if stage == "encoder":  # a falling JEPA loss only means something if the targets did not collapse
                _, stds = history(client, result.run_id, "target_std_mean")
                print(f"encoder: target std {stds[0]:.3f} -> {stds[-1]:.3f} (collapse below 0.01)")
            steps_logged, values = curves[stage]
            print(
                f"{stage}: {key} {values[0]:.4f} (step {steps_logged[0]}) -> {values[-1]:.4f} "
                f"(step {steps_logged[-1]}), {elapsed:.0f} s wall for {steps} steps"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for axis, (stage, title) in zip(
        axes, (("encoder", "stage 1: JEPA masked MSE"), ("codec", "stage 2: MR-STFT")), strict=True
    ):
        steps_logged, values = curves[stage]
        axis.plot(steps_logged, values)
        axis.set_title(f"tiny, {title}")
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path = args.out / "training_curves.png"
    figure.savefig(path, dpi=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
