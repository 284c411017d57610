"""Stage-2 losses: waveform L1, multi-resolution STFT, LSGAN and feature matching (spec §7, §11.16).

Generator total = w_wav·L1 + w_stft·MR-STFT + w_adv·(G_adv,mpd + G_adv,msd + FM_mpd + FM_msd), with the
reference weights 1, 2 and 0.1 and FM scaled by 2 (spec §7). Deviation (spec §11.16): the adversarial and
feature-matching terms are gated on the same `disc_start_step` as the discriminator updates, instead of
pulling the generator towards an untrained discriminator from step 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from training.configs import LossConfig
from training.models.discriminators import DiscriminatorOutput

_LOG_EPS = 1e-5  # spec §7: ln(mag + 1e-5)


def waveform_l1(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean |ŷ − y| over every sample, padding included (spec §7): [B, 1, L] × 2 -> scalar."""
    return F.l1_loss(y_hat, y)


class MultiResolutionSTFTLoss(nn.Module):
    """Average over resolutions of mean|ΔS| + mean|Δ ln(S + 1e-5)| on STFT magnitudes S (spec §7).

    Hann window, centred reflect-padded STFT, computed in fp32 whatever the autocast state.
    No spectral-convergence term. Shapes: [B, 1, L] × 2 -> scalar.
    """

    def __init__(self, resolutions: Sequence[tuple[int, int, int]]) -> None:
        super().__init__()
        self.resolutions = [tuple(r) for r in resolutions]
        for n_fft, _, win_length in self.resolutions:
            # Windows are derived data: not saved in checkpoints, but they follow .to(device).
            self.register_buffer(f"window_{n_fft}_{win_length}", torch.hann_window(win_length), persistent=False)

    def _magnitude(self, wav: torch.Tensor, n_fft: int, hop: int, win_length: int) -> torch.Tensor:
        window = getattr(self, f"window_{n_fft}_{win_length}")
        spec = torch.stft(
            wav.flatten(0, -2),  # [B, 1, L] -> [B, L]
            n_fft=n_fft,
            hop_length=hop,
            win_length=win_length,
            window=window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.abs()  # [B, n_fft // 2 + 1, frames]

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """MR-STFT distance: [B, 1, L] × 2 -> scalar (fp32)."""
        with torch.autocast(device_type=y.device.type, enabled=False):
            y_hat, y = y_hat.float(), y.float()
            total = y.new_zeros(())
            for n_fft, hop, win_length in self.resolutions:
                mag_hat = self._magnitude(y_hat, n_fft, hop, win_length)
                mag = self._magnitude(y, n_fft, hop, win_length)
                total = total + F.l1_loss(mag_hat, mag)
                total = total + F.l1_loss(torch.log(mag_hat + _LOG_EPS), torch.log(mag + _LOG_EPS))
            return total / len(self.resolutions)


def lsgan_generator_loss(fake: DiscriminatorOutput) -> torch.Tensor:
    """Σ over sub-discriminators of mean((D(ŷ) − 1)²) (spec §7): logits -> scalar."""
    return torch.stack([torch.mean((logits - 1) ** 2) for logits in fake.logits]).sum()


def lsgan_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """Σ over sub-discriminators of mean((D(y) − 1)²) + mean(D(ŷ)²) (spec §7): logits -> scalar."""
    terms = [torch.mean((r - 1) ** 2) + torch.mean(f**2) for r, f in zip(real.logits, fake.logits, strict=True)]
    return torch.stack(terms).sum()


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput, scale: float) -> torch.Tensor:
    """scale × Σ_sub Σ_layer mean|f(ŷ) − sg f(y)| (spec §7; scale 2 in the paper): features -> scalar."""
    terms = [
        F.l1_loss(f, r.detach())
        for real_maps, fake_maps in zip(real.features, fake.features, strict=True)
        for r, f in zip(real_maps, fake_maps, strict=True)
    ]
    return scale * torch.stack(terms).sum()


@dataclass
class DiscriminatorPair:
    """One multi-discriminator's outputs on the real and the generated batch."""

    real: DiscriminatorOutput
    fake: DiscriminatorOutput


@dataclass
class GeneratorLoss:
    """Weighted total plus every unweighted component, for logging. GAN terms are 0 while inactive."""

    total: torch.Tensor
    waveform: torch.Tensor
    stft: torch.Tensor
    adversarial_mpd: torch.Tensor
    adversarial_msd: torch.Tensor
    feature_matching_mpd: torch.Tensor
    feature_matching_msd: torch.Tensor
    gan_active: bool


@dataclass
class DiscriminatorLoss:
    """LSGAN discriminator loss, summed over MPD and MSD."""

    total: torch.Tensor
    mpd: torch.Tensor
    msd: torch.Tensor


def gan_active(step: int, config: LossConfig) -> bool:
    """Whether GAN terms apply at `step`: from `disc_start_step` on, for both players (spec §11.16)."""
    return step >= config.disc_start_step


def generator_loss(
    y_hat: torch.Tensor,
    y: torch.Tensor,
    *,
    step: int,
    config: LossConfig,
    stft_loss: MultiResolutionSTFTLoss,
    mpd: DiscriminatorPair | None = None,
    msd: DiscriminatorPair | None = None,
) -> GeneratorLoss:
    """Combine the stage-2 generator terms with `config` weights: [B, 1, L] × 2 -> GeneratorLoss.

    Before `disc_start_step` the discriminator outputs may be omitted (they are ignored anyway), so the
    training loop can skip running the discriminators at all.
    """
    waveform = waveform_l1(y_hat, y)
    stft = stft_loss(y_hat, y)
    total = config.waveform_weight * waveform + config.stft_weight * stft
    zero = waveform.new_zeros(())
    adv_mpd = adv_msd = fm_mpd = fm_msd = zero
    active = gan_active(step, config)
    if active:
        if mpd is None or msd is None:
            raise ValueError(
                f"generator_loss at step {step} >= disc_start_step {config.disc_start_step} needs the MPD and "
                "MSD outputs; pass mpd= and msd= DiscriminatorPair(real, fake)"
            )
        adv_mpd, adv_msd = lsgan_generator_loss(mpd.fake), lsgan_generator_loss(msd.fake)
        fm_mpd = feature_matching_loss(mpd.real, mpd.fake, config.feature_matching_scale)
        fm_msd = feature_matching_loss(msd.real, msd.fake, config.feature_matching_scale)
        total = total + config.adversarial_weight * (adv_mpd + adv_msd + fm_mpd + fm_msd)
    return GeneratorLoss(
        total=total,
        waveform=waveform,
        stft=stft,
        adversarial_mpd=adv_mpd,
        adversarial_msd=adv_msd,
        feature_matching_mpd=fm_mpd,
        feature_matching_msd=fm_msd,
        gan_active=active,
    )


def discriminator_loss(mpd: DiscriminatorPair, msd: DiscriminatorPair) -> DiscriminatorLoss:
    """LSGAN loss for both discriminators; compute `fake` on a detached ŷ (spec §7): -> DiscriminatorLoss."""
    mpd_loss = lsgan_discriminator_loss(mpd.real, mpd.fake)
    msd_loss = lsgan_discriminator_loss(msd.real, msd.fake)
    return DiscriminatorLoss(total=mpd_loss + msd_loss, mpd=mpd_loss, msd=msd_loss)
