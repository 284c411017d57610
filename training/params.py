"""Parameter counts per component, built on the `meta` device so no memory is allocated (spec §10).

The paper's numbers at 24 kHz: online encoder 118 512 562 (blocks 2.497 M, 9.975 M, 22.236 M, 39.741 M,
40.921 M), predictor 3 177 600 + 128 for the mask token, generator 69 291 649, MPD 41 092 165,
MSD 16 913 859.
"""

from __future__ import annotations

import torch
from torch import nn

from training.configs import CodecConfig
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from training.models.encoder import Encoder
from training.models.hifigan import Generator
from training.models.predictor import Predictor


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in `module` (trainable or not)."""
    return sum(parameter.numel() for parameter in module.parameters())


def parameter_report(config: CodecConfig) -> dict[str, int]:
    """Parameters per component of `config`'s model, including aggregate stage totals.

    Keys: `encoder.input_conv`, `encoder.block0..4`, `encoder.bottleneck`, `encoder.conformers`, `encoder`,
    `predictor`, `mask_token`, `target_encoder`, `stage1_total`, `generator`, `mpd`, `msd`, `stage2_total`
    (all stage-1 modules + generator, as the reference builds it) and `tokenizer_inference` (encoder +
    generator).
    """
    report: dict[str, int] = {}
    with torch.device("meta"):
        encoder = Encoder(config.encoder)
        predictor = Predictor(
            config.jepa.predictor, config.encoder.code_dim, config.encoder.ff_mult, config.encoder.conv_kernel
        )
        report["encoder.input_conv"] = count_parameters(encoder.input_conv)
        for index, block in enumerate(encoder.blocks):
            report[f"encoder.block{index}"] = count_parameters(block)
        report["encoder.bottleneck"] = count_parameters(encoder.bottleneck_proj)
        report["encoder.conformers"] = count_parameters(encoder.conformers)
        report["encoder"] = count_parameters(encoder)
        report["predictor"] = count_parameters(predictor)
        report["mask_token"] = config.encoder.code_dim  # one [1, D, 1] vector (spec §3)
        report["target_encoder"] = report["encoder"]  # an identical EMA copy
        report["stage1_total"] = 2 * report["encoder"] + report["predictor"] + report["mask_token"]

        report["generator"] = count_parameters(Generator(config.decoder, config.encoder.code_dim))
        # The reference's stage-2 model still holds the stage-1 modules (predictor, token, EMA copy; spec §10).
        report["stage2_total"] = report["stage1_total"] + report["generator"]
        report["tokenizer_inference"] = report["encoder"] + report["generator"]
        report["mpd"] = count_parameters(MultiPeriodDiscriminator(config.discriminator))
        report["msd"] = count_parameters(MultiScaleDiscriminator(config.discriminator))
    return report
