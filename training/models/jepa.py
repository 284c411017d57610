"""Stage-1 JEPA: online encoder + EMA target encoder + latent-space masking + predictor (spec §3).

Both encoders see the full, unmasked waveform; masking happens only at the predictor input, by replacing
masked frames of the online latents with one learned mask token. This is the paper's design even though
visible online features can leak information about masked frames (spec §11.2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from training.configs import CodecConfig, JEPAConfig
from training.models.encoder import Encoder
from training.models.init import INIT_STD
from training.models.masking import block_mask, default_max_span
from training.models.predictor import Predictor

# The reference warns (every 100 steps) when the mean per-channel target std drops below this (spec §3).
COLLAPSE_STD_THRESHOLD = 0.01


@dataclass
class JEPAOutput:
    """One stage-1 forward.

    loss:                scalar masked MSE (differentiable w.r.t. the online encoder, token and predictor).
    predictions:         [B, D, T] predictor output at every position.
    targets:             [B, D, T] stop-gradient target-encoder latents.
    mask:                [B, T] bool, True = visible, False = masked (predicted by the loss).
    realised_mask_ratio: masked fraction of the batch (usually below ρ since overlaps count twice; the last span
                         can overshoot on very short clips, spec §11.4).
    target_std_mean, target_std_min: 0-dim detached tensors, the collapse monitor (per-channel std of the
                         targets over batch and time; spec §3 warns when the mean falls below 0.01).
    """

    loss: torch.Tensor
    predictions: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    realised_mask_ratio: float
    target_std_mean: torch.Tensor
    target_std_min: torch.Tensor


def ema_momentum(config: JEPAConfig, step: int) -> float:
    """τ at optimiser step `step`: constant 0.996 by default; optional linear ramp (spec §11.3)."""
    if config.ema_final_momentum is None:
        return config.ema_momentum
    if config.ema_ramp_steps <= 0:
        raise ValueError(
            f"JEPAConfig.ema_final_momentum={config.ema_final_momentum} needs ema_ramp_steps > 0, "
            f"got {config.ema_ramp_steps}"
        )
    progress = min(max(step, 0) / config.ema_ramp_steps, 1.0)
    return config.ema_momentum + (config.ema_final_momentum - config.ema_momentum) * progress


def masked_mse(predictions: torch.Tensor, targets: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Σ (1 − m)(ẑ − z)² / (N_masked · D), N_masked counted over the whole batch (spec §3), in fp32.

    predictions, targets [B, D, T], visible [B, T] bool -> scalar. A batch with no masked frame gives 0.
    """
    masked = (~visible).unsqueeze(1).to(torch.float32)  # [B, 1, T]
    squared = (predictions.float() - targets.float()).pow(2) * masked
    denominator = masked.sum().clamp(min=1.0) * predictions.shape[1]
    return squared.sum() / denominator


class JEPA(nn.Module):
    """Online encoder, frozen EMA target encoder, learned mask token [1, D, 1] and predictor (spec §3).

    The target is a deep copy taken after initialisation (so it starts identical), has requires_grad off
    and always stays in eval mode (no dropout). Keep the module in fp32 and use autocast for mixed
    precision, so the EMA accumulates in fp32 (spec §11.3).
    """

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder)
        code_dim = config.encoder.code_dim
        self.mask_token = nn.Parameter(torch.empty(1, code_dim, 1))
        nn.init.trunc_normal_(self.mask_token, std=INIT_STD)
        self.predictor = Predictor(
            config.jepa.predictor, code_dim, config.encoder.ff_mult, config.encoder.conv_kernel, config.encoder.dropout
        )
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_encoder.requires_grad_(False)
        self.target_encoder.eval()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Online encoder, mask token and predictor parameters: what the stage-1 optimiser updates."""
        return [parameter for parameter in self.parameters() if parameter.requires_grad]

    def train(self, mode: bool = True) -> JEPA:
        """Switch online parts to `mode`; the target encoder stays in eval mode."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def forward(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> JEPAOutput:
        """One stage-1 forward with a freshly drawn mask.

        wav [B, 1, L] -> JEPAOutput (latents [B, D, T] with T = encoder.num_frames(L), computed analytically
        to draw the mask before the forward, spec §11.26).
        """
        batch, frames = wav.shape[0], self.encoder.num_frames(wav.shape[-1])
        jepa = self.config.jepa
        mask = block_mask(
            batch,
            frames,
            ratio=jepa.mask_ratio,
            min_span=jepa.min_span,
            max_span=default_max_span(frames, jepa.max_span_floor),
            generator=generator,
            device=wav.device,
        )
        online = self.encoder(wav)  # [B, D, T]
        with torch.no_grad():
            targets = self.target_encoder(wav).float()
        visible = mask.visible.unsqueeze(1).to(online.dtype)  # [B, T] -> [B, 1, T]
        predictor_input = online * visible + self.mask_token.to(online.dtype) * (1.0 - visible)
        predictions = self.predictor(predictor_input)
        loss = masked_mse(predictions, targets, mask.visible)
        channel_std = targets.transpose(0, 1).reshape(targets.shape[1], -1).std(dim=1, correction=0)  # [D]
        return JEPAOutput(
            loss=loss,
            predictions=predictions,
            targets=targets,
            mask=mask.visible,
            realised_mask_ratio=mask.realised_ratio,
            target_std_mean=channel_std.mean(),
            target_std_min=channel_std.min(),
        )

    @torch.no_grad()
    def update_target(self, step: int = 0) -> float:
        """EMA step θ_t ← τ·θ_t + (1 − τ)·θ_o after an optimiser step; buffers are copied. Returns τ."""
        momentum = ema_momentum(self.config.jepa, step)
        online_params = dict(self.encoder.named_parameters())
        for name, target in self.target_encoder.named_parameters():
            target.lerp_(online_params[name].detach().to(target.dtype), 1.0 - momentum)
        online_buffers = dict(self.encoder.named_buffers())
        for name, buffer in self.target_encoder.named_buffers():
            buffer.copy_(online_buffers[name])
        return momentum
