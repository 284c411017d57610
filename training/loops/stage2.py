"""Stage 2 on a Ray Train worker: frozen stage-1 encoder → FSQ → HiFi-GAN generator against MPD + MSD (spec §4–§7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray.train.torch
import torch

from storage.mlflow_io import download_model_artifact, use_tracking_uri
from training.codec import Codec
from training.data import AudioBatch
from training.encoder_io import load_encoder
from training.job import TrainJob
from training.loops.base import TrainingLoop
from training.loops.runtime import autocast, mean_across_workers
from training.losses import DiscriminatorPair, MultiResolutionSTFTLoss, discriminator_loss, gan_active, generator_loss
from training.mlflow_codec import ENCODER_ARTIFACT
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from training.optim import adamw, warmup_cosine

DISCRIMINATOR_LR_SCALE = 0.5  # 7.5e-5 = half the generator's 1.5e-4 (spec §8, §11.18)


def load_stage1_encoder(job: TrainJob) -> torch.nn.Module:
    """The frozen encoder named by `job.encoder_uri` (MLflow), checked to match the job's encoder config."""
    if not job.encoder_uri:
        raise ValueError("stage 2 needs an encoder: pass --encoder models:/speechtok-encoder@candidate")
    use_tracking_uri(job.mlflow_tracking_uri)
    encoder, config = load_encoder(download_model_artifact(job.encoder_uri, ENCODER_ARTIFACT))
    if config.encoder != job.model.encoder:
        raise ValueError(
            f"{job.encoder_uri} was trained with encoder config {config.encoder}, but this job's model config "
            f"'{job.model.name}' has {job.model.encoder}; use the same --config for both stages"
        )
    return encoder


class CodecTraining(TrainingLoop):
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

    def train_step(self, batch: AudioBatch) -> dict[str, float]:
        audio = batch.audio.to(self.device)  # [B, 1, L], L a whole number of hops
        loss_config = self.job.model.loss
        active = gan_active(self.step, loss_config)
        with torch.no_grad():
            values = self.codec.fsq(self.codec.encoder(audio)).values  # [B, D, T] grid values
        with autocast(self.device):
            y_hat = self.generator(values)[..., : audio.shape[-1]]  # exact geometry: already L samples

        metrics: dict[str, float] = {}
        if active:
            with autocast(self.device):
                d_loss = discriminator_loss(
                    DiscriminatorPair(self.mpd_ddp(audio), self.mpd_ddp(y_hat.detach())),
                    DiscriminatorPair(self.msd_ddp(audio), self.msd_ddp(y_hat.detach())),
                )
            self.optimizer_d.zero_grad(set_to_none=True)
            d_loss.total.backward()
            torch.nn.utils.clip_grad_norm_(
                [*self.mpd.parameters(), *self.msd.parameters()], self.job.optim.grad_clip_norm
            )
            self.optimizer_d.step()
            metrics.update(
                disc_loss=float(d_loss.total.detach()), disc_mpd=float(d_loss.mpd), disc_msd=float(d_loss.msd)
            )
        self.scheduler_d.step()

        with autocast(self.device):
            pairs = (
                {
                    "mpd": DiscriminatorPair(self.mpd_ddp(audio), self.mpd_ddp(y_hat)),
                    "msd": DiscriminatorPair(self.msd_ddp(audio), self.msd_ddp(y_hat)),
                }
                if active
                else {}
            )
            g_loss = generator_loss(
                y_hat.float(), audio, step=self.step, config=loss_config, stft_loss=self.stft_loss, **pairs
            )
        self.optimizer_g.zero_grad(set_to_none=True)
        g_loss.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.codec.generator.parameters(), self.job.optim.grad_clip_norm)
        self.optimizer_g.step()
        self.scheduler_g.step()
        metrics.update(
            loss=mean_across_workers(float(g_loss.total.detach()), self.device),
            stft=mean_across_workers(float(g_loss.stft.detach()), self.device),
            waveform_l1=float(g_loss.waveform.detach()),
            adversarial=float((g_loss.adversarial_mpd + g_loss.adversarial_msd).detach()),
            feature_matching=float((g_loss.feature_matching_mpd + g_loss.feature_matching_msd).detach()),
            grad_norm=float(grad_norm),
            lr=float(self.scheduler_g.get_last_lr()[0]),
        )
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
