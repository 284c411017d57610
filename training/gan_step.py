"""One stage-2 optimisation step, free of Ray: discriminator update, then generator update (spec §7).

The Ray Train loop (`training.loops.stage2`) builds this with DDP-wrapped discriminators; tests build it with
plain modules. Choices (issue 12):
- the generator step runs the *unwrapped* discriminators with their parameters frozen, so its backward computes
  no discriminator gradients and DDP all-reduces none (only ŷ needs a gradient through them);
- the real-audio discriminator pass of the generator step runs under `no_grad` (feature-matching targets and
  real scores are constants for the generator);
- the generator output is cast to fp32 before every loss; autocast covers the networks only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from training.configs import LossConfig
from training.losses import (
    DiscriminatorPair,
    MultiResolutionSTFTLoss,
    discriminator_loss,
    gan_active,
    generator_loss,
)
from training.models.discriminators import DiscriminatorOutput

Discriminator = Callable[[torch.Tensor], DiscriminatorOutput]


def fit_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    """Crop or zero-pad the last axis to `length`: [..., L'] -> [..., length].

    Exact geometry already gives L' = length; `legacy_padding` gives hop·(N−1) + 384 for N hops, which the
    reference crops or pads to the input length the same way (spec §6).
    """
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return nn.functional.pad(audio, (0, length - audio.shape[-1]))


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of `modules` do not require grad inside the block (restored after)."""
    params = [p for m in modules for p in m.parameters()]
    previous = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, previous, strict=True):
            p.requires_grad_(flag)


def as_fp32(output: DiscriminatorOutput) -> DiscriminatorOutput:
    """Logits and feature maps in fp32 (autocast leaves them bf16 on GPU), so the losses are computed in fp32."""
    return DiscriminatorOutput(
        logits=[logits.float() for logits in output.logits],
        features=[[f.float() for f in maps] for maps in output.features],
    )


class GanStep:
    """Owns the step logic; the caller owns models, optimisers and precision.

    `generator` and `mpd_train`/`msd_train` may be DDP wrappers of `mpd`/`msd`; the generator step always
    uses the plain `mpd`/`msd` modules.
    """

    def __init__(
        self,
        *,
        generator: Callable[[torch.Tensor], torch.Tensor],
        generator_params: list[nn.Parameter],
        mpd: nn.Module,
        msd: nn.Module,
        mpd_train: Discriminator,
        msd_train: Discriminator,
        optimizer_g: torch.optim.Optimizer,
        optimizer_d: torch.optim.Optimizer,
        stft_loss: MultiResolutionSTFTLoss,
        loss_config: LossConfig,
        grad_clip_norm: float,
        autocast: Callable[[], contextlib.AbstractContextManager[object]],
    ) -> None:
        self.generator = generator
        self.generator_params = generator_params
        self.mpd, self.msd = mpd, msd
        self.mpd_train, self.msd_train = mpd_train, msd_train
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.stft_loss = stft_loss
        self.loss_config = loss_config
        self.grad_clip_norm = grad_clip_norm
        self.autocast = autocast

    def __call__(self, values: torch.Tensor, audio: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """values [B, D, T] (frozen-encoder grid values), audio [B, 1, L] -> metrics of one D + G update.

        The metrics are detached 0-dim tensors, left on the device until a logging step reads them.
        """
        active = gan_active(step, self.loss_config)
        with self.autocast():
            y_hat = self.generator(values)
        y_hat = fit_length(y_hat.float(), audio.shape[-1])  # [B, 1, L] fp32 for every loss
        metrics: dict[str, torch.Tensor] = {}
        if active:
            metrics.update(self._discriminator_update(audio, y_hat.detach()))
        metrics.update(self._generator_update(audio, y_hat, step, active))
        return metrics

    def _discriminator_update(self, audio: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast():
            mpd = DiscriminatorPair(as_fp32(self.mpd_train(audio)), as_fp32(self.mpd_train(fake)))
            msd = DiscriminatorPair(as_fp32(self.msd_train(audio)), as_fp32(self.msd_train(fake)))
        loss = discriminator_loss(mpd, msd)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_([*self.mpd.parameters(), *self.msd.parameters()], self.grad_clip_norm)
        self.optimizer_d.step()
        return {"disc_loss": loss.total.detach(), "disc_mpd": loss.mpd.detach(), "disc_msd": loss.msd.detach()}

    def _generator_update(
        self, audio: torch.Tensor, y_hat: torch.Tensor, step: int, active: bool
    ) -> dict[str, torch.Tensor]:
        pairs: dict[str, DiscriminatorPair] = {}
        with frozen(self.mpd, self.msd):
            if active:
                with torch.no_grad(), self.autocast():
                    real_mpd, real_msd = self.mpd(audio), self.msd(audio)
                with self.autocast():
                    fake_mpd, fake_msd = self.mpd(y_hat), self.msd(y_hat)
                pairs = {
                    "mpd": DiscriminatorPair(as_fp32(real_mpd), as_fp32(fake_mpd)),
                    "msd": DiscriminatorPair(as_fp32(real_msd), as_fp32(fake_msd)),
                }
            loss = generator_loss(y_hat, audio, step=step, config=self.loss_config, stft_loss=self.stft_loss, **pairs)
            self.optimizer_g.zero_grad(set_to_none=True)
            loss.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.generator_params, self.grad_clip_norm)
        self.optimizer_g.step()
        return {
            "loss": loss.total.detach(),
            "stft": loss.stft.detach(),
            "waveform_l1": loss.waveform.detach(),
            "adversarial": (loss.adversarial_mpd + loss.adversarial_msd).detach(),
            "feature_matching": (loss.feature_matching_mpd + loss.feature_matching_msd).detach(),
            "grad_norm": grad_norm.detach(),
        }
