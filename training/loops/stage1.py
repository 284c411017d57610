"""Stage 1 on a Ray Train worker: JEPA with DAAM, masked latent prediction against the EMA target (spec §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray.train.torch
import torch

from training.data import AudioBatch
from training.encoder_io import save_encoder
from training.job import TrainJob
from training.loops.base import StepMetrics, TrainingLoop
from training.loops.runtime import autocast
from training.models.jepa import COLLAPSE_STD_THRESHOLD, JEPA
from training.optim import adamw, warmup_cosine

# The reference's collapse warning period (spec §3): at most one warning per this many steps.
COLLAPSE_WARN_EVERY = 100


class EncoderTraining(TrainingLoop):
    def build(self) -> None:
        self.last_collapse_warning = -COLLAPSE_WARN_EVERY
        self.model = JEPA(self.job.model)
        self.optimizer = adamw(self.model.parameters(), self.job.optim)
        self.scheduler = warmup_cosine(self.optimizer, self.job.optim, self.job.max_steps)
        # DDP over the online encoder, mask token and predictor; the frozen target has no gradients.
        self.ddp = ray.train.torch.prepare_model(self.model)

    def train_step(self, batch: AudioBatch) -> StepMetrics:
        self.ddp.train()
        # Masks are seeded by (seed, rank, step), so a resumed run draws the masks an uninterrupted one would.
        generator = torch.Generator().manual_seed(hash((self.job.seed, self.context.rank, self.step)) & 0x7FFFFFFF)
        with autocast(self.device):
            output = self.ddp(batch.audio.to(self.device), generator)
        self.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.job.optim.grad_clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        momentum = self.model.update_target(self.step)
        with torch.no_grad():  # the collapse monitor on the predictions too (spec §3)
            predictions = output.predictions.detach().float()
            prediction_std = predictions.transpose(0, 1).reshape(predictions.shape[1], -1).std(dim=1, correction=0)
        metrics: StepMetrics = {
            "loss": output.loss.detach(),
            "lr": float(self.scheduler.get_last_lr()[0]),
            "grad_norm": grad_norm.detach(),
            "ema_momentum": momentum,
            "target_std_mean": output.target_std_mean,
            "target_std_min": output.target_std_min,
            "prediction_std_mean": prediction_std.mean(),
            "prediction_std_min": prediction_std.min(),
            "realised_mask_ratio": output.realised_mask_ratio,
        }
        if self.step - self.last_collapse_warning >= COLLAPSE_WARN_EVERY:
            self._warn_on_collapse(output.target_std_mean, metrics["prediction_std_mean"])
        return metrics

    def _warn_on_collapse(self, target_std: torch.Tensor | float, prediction_std: torch.Tensor | float) -> None:
        """At most every COLLAPSE_WARN_EVERY steps (one host sync then), on the chief only."""
        if not self.context.is_chief:
            return
        self.last_collapse_warning = self.step
        stds = {"target": float(target_std), "prediction": float(prediction_std)}
        low = {name: value for name, value in stds.items() if value < COLLAPSE_STD_THRESHOLD}
        if low:
            shown = ", ".join(f"{name} std {value:.4g}" for name, value in low.items())
            print(f"warning at step {self.step}: {shown} < {COLLAPSE_STD_THRESHOLD}: representation collapse?")

    def log_extras(self) -> dict[str, float]:
        metrics = {}
        for index, stats in enumerate(self.model.encoder.gate_stats()):
            if stats is not None:
                metrics[f"daam_gate{index}_mean"] = stats.mean
                metrics[f"daam_gate{index}_std"] = stats.std
        return metrics

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),  # online, target (EMA, fp32), mask token, predictor
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def export(self, directory: Path) -> None:
        # The online encoder is the tokenizer path (spec §9).
        save_encoder(self.model.encoder, self.job.model, directory, self.step)


def train_encoder_worker(config: dict[str, TrainJob]) -> None:
    """`train_loop_per_worker` for Ray's TorchTrainer; `config["job"]` is the whole job."""
    loop = EncoderTraining(config["job"])
    loop.setup()
    loop.run()
    loop.cleanup()
