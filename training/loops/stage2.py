"""Stage 2 on a Ray Train worker: frozen stage-1 encoder → FSQ → HiFi-GAN generator against MPD + MSD (spec §4–§7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray.train.torch
import torch

from storage.mlflow_io import use_tracking_uri
from training.codec import Codec
from training.data import AudioBatch
from training.encoder_io import load_encoder
from training.gan_step import GanStep
from training.job import TrainJob
from training.loops.base import StepMetrics, TrainingLoop
from training.loops.runtime import autocast
from training.losses import MultiResolutionSTFTLoss
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from training.optim import adamw, warmup_cosine
from training.registry import fetch_encoder

DISCRIMINATOR_LR_SCALE = 0.5  # 7.5e-5 = half the generator's 1.5e-4 (spec §8, §11.18)


def load_stage1_encoder(job: TrainJob) -> torch.nn.Module:
    """The frozen encoder named by `job.encoder_uri` (MLflow), checked to match the job's encoder config.

    The driver pinned the URI to a version (`training.launch.pin_encoder`), so every worker and every restart
    loads the same encoder; an alias here would be resolved anew each time, so it is refused.
    """
    if not job.encoder_uri:
        raise ValueError("stage 2 needs an encoder: pass --encoder models:/speechtok-encoder@candidate")
    if "@" in job.encoder_uri:
        raise ValueError(
            f"encoder {job.encoder_uri} is an alias; the driver pins it to models:/name/VERSION before launching "
            "workers (training.launch.train)"
        )
    use_tracking_uri(job.mlflow_tracking_uri)
    files = fetch_encoder(job.encoder_uri)
    with files.materialised() as directory:
        encoder, config = load_encoder(directory)
    if config.encoder != job.model.encoder:
        raise ValueError(
            f"{job.encoder_uri} was trained with encoder config {config.encoder}, but this job's model config "
            f"'{job.model.name}' has {job.model.encoder}; use the same --config for both stages"
        )
    return encoder


class CodecTraining(TrainingLoop):
    mean_metrics = frozenset({"loss", "stft"})

    def build(self) -> None:
        encoder = load_stage1_encoder(self.job)
        codec = Codec.from_config(self.job.model)
        codec.encoder.load_state_dict(encoder.state_dict(), strict=True)
        # Frozen and in eval mode: no dropout, deterministic tokens (spec §11.14, §11.15).
        codec.encoder.requires_grad_(False)
        self.codec = codec.to(self.device)
        self.codec.encoder.eval()
        self.mpd = MultiPeriodDiscriminator(self.job.model.discriminator)
        self.msd = MultiScaleDiscriminator(self.job.model.discriminator)
        self.stft_loss = MultiResolutionSTFTLoss(self.job.model.loss.stft_resolutions).to(self.device)
        self.optimizer_g = adamw(self.codec.generator.parameters(), self.job.optim)
        discriminator_params = [*self.mpd.parameters(), *self.msd.parameters()]
        self.optimizer_d = adamw(discriminator_params, self.job.optim, lr_scale=DISCRIMINATOR_LR_SCALE)
        self.scheduler_g = warmup_cosine(self.optimizer_g, self.job.optim, self.job.max_steps)
        self.scheduler_d = warmup_cosine(self.optimizer_d, self.job.optim, self.job.max_steps)
        # Every trainable network is DDP-wrapped, discriminators included (spec §11.20).
        self.generator = ray.train.torch.prepare_model(self.codec.generator)
        self.mpd_ddp = ray.train.torch.prepare_model(self.mpd)
        self.msd_ddp = ray.train.torch.prepare_model(self.msd)
        self.gan_step = GanStep(
            generator=self.generator,
            generator_params=list(self.codec.generator.parameters()),
            mpd=self.mpd,
            msd=self.msd,
            mpd_train=self.mpd_ddp,
            msd_train=self.msd_ddp,
            optimizer_g=self.optimizer_g,
            optimizer_d=self.optimizer_d,
            stft_loss=self.stft_loss,
            loss_config=self.job.model.loss,
            grad_clip_norm=self.job.optim.grad_clip_norm,
            autocast=lambda: autocast(self.device),
        )

    def train_step(self, batch: AudioBatch) -> StepMetrics:
        audio = batch.audio.to(self.device)  # [B, 1, L], L a whole number of hops
        with torch.no_grad():
            values = self.codec.fsq(self.codec.encoder(audio)).values  # [B, D, T] grid values
        metrics: StepMetrics = dict(self.gan_step(values, audio, self.step))
        self.scheduler_d.step()
        self.scheduler_g.step()
        metrics["lr"] = float(self.scheduler_g.get_last_lr()[0])
        return metrics

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.codec.generator.state_dict(),
            "mpd": self.mpd.state_dict(),
            "msd": self.msd.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.codec.generator.load_state_dict(state["generator"], strict=True)
        self.mpd.load_state_dict(state["mpd"], strict=True)
        self.msd.load_state_dict(state["msd"], strict=True)
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.scheduler_g.load_state_dict(state["scheduler_g"])
        self.scheduler_d.load_state_dict(state["scheduler_d"])

    def export(self, directory: Path) -> None:
        self.codec.eval()
        self.codec.save(directory)


def train_codec_worker(config: dict[str, TrainJob]) -> None:
    """`train_loop_per_worker` for Ray's TorchTrainer; `config["job"]` is the whole job."""
    loop = CodecTraining(config["job"])
    loop.setup()
    loop.run()
    loop.cleanup()
