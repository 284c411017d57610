"""GPU checks of the `paper` config (opt-in: `pytest -m gpu`, or `make gpu-check` with the throughput benchmark).

Nothing here runs without CUDA. On a GPU machine it runs a few hundred steps of each training stage with bf16
autocast (the loops' precision), and checks that tokens are bit-identical across batch compositions under the
canonical encoding policy (TF32 off, deterministic kernels, fixed batch shape).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import torch

from training.codec import Codec
from training.configs import paper
from training.encoding_policy import EncodingPolicy, EncodingSettings, canonical_numerics
from training.gan_step import GanStep
from training.losses import MultiResolutionSTFTLoss
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from training.models.jepa import JEPA
from training.optim import OptimConfig, adamw

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)"),
]
STEPS = 200
RATE = 24_000


def speech_like(batch: int, seconds: float, seed: int, device: torch.device) -> torch.Tensor:
    """Harmonic clips under a syllable-rate envelope: [B, 1, L] on `device`."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    pitch = 90 + 130 * torch.rand(batch, 1, generator=generator)
    voiced = sum(torch.sin(2 * math.pi * k * pitch * t) / k for k in range(1, 8))
    envelope = 0.5 * (1 - torch.cos(2 * math.pi * 3 * t))
    wav = 0.2 * voiced * envelope + 0.003 * torch.randn(batch, t.shape[0], generator=generator)
    return wav.unsqueeze(1).float().to(device)


def bf16() -> contextlib.AbstractContextManager[object]:
    return torch.autocast("cuda", dtype=torch.bfloat16)


def test_stage1_paper_trains_with_bf16_autocast() -> None:
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = JEPA(paper(RATE)).to(device)
    optimizer = adamw(model.parameters(), OptimConfig(lr=3e-4, warmup_steps=20))
    losses = []
    for step in range(STEPS):
        audio = speech_like(8, 4.0, seed=step % 16, device=device)  # 16 distinct batches of 8 × 4 s
        with bf16():
            output = model(audio, torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        model.update_target(step)
        losses.append(float(output.loss))
    assert all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    assert float(output.target_std_mean) > 0.01  # no collapse


def test_stage2_paper_trains_with_bf16_autocast() -> None:
    device = torch.device("cuda")
    torch.manual_seed(0)
    base = paper(RATE)
    # The paper starts the discriminators at step 5000; start them at 100 so both players train here.
    config = dataclasses.replace(base, loss=dataclasses.replace(base.loss, disc_start_step=STEPS // 2))
    codec = Codec.from_config(config).to(device)
    codec.encoder.requires_grad_(False).eval()
    mpd, msd = (
        MultiPeriodDiscriminator(config.discriminator).to(device),
        MultiScaleDiscriminator(config.discriminator).to(device),
    )
    step = GanStep(
        generator=codec.generator,
        generator_params=list(codec.generator.parameters()),
        mpd=mpd,
        msd=msd,
        mpd_train=mpd,
        msd_train=msd,
        optimizer_g=adamw(codec.generator.parameters(), OptimConfig(lr=2e-4, warmup_steps=20)),
        optimizer_d=adamw([*mpd.parameters(), *msd.parameters()], OptimConfig(lr=1e-4, warmup_steps=20)),
        stft_loss=MultiResolutionSTFTLoss(config.loss.stft_resolutions).to(device),
        loss_config=config.loss,
        grad_clip_norm=1.0,
        autocast=bf16,
    )
    stft = []
    for index in range(STEPS):
        audio = speech_like(4, 1.6, seed=index % 8, device=device)
        with torch.no_grad():
            values = codec.fsq(codec.encoder(audio)).values
        metrics = step(values, audio, index)
        stft.append(float(metrics["stft"]))
    assert "disc_loss" in metrics and math.isfinite(float(metrics["disc_loss"]))
    assert all(math.isfinite(x) for x in stft)
    assert np.mean(stft[-20:]) < np.mean(stft[:20])


def test_tokens_are_bit_identical_across_batch_compositions_on_gpu() -> None:
    torch.manual_seed(0)
    codec = Codec.from_config(paper(16_000), encoding=EncodingSettings(cuda_batch_chunks=8)).to("cuda").eval()
    clips = [speech_like(1, s, seed=i, device=torch.device("cpu"))[0, 0].numpy() for i, s in enumerate([3.2] * 9)]
    alone = [codec.encode(clip, RATE).tokens for clip in clips]
    batch = np.zeros((len(clips), max(len(c) for c in clips)), dtype=np.float32)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    together = codec.encode_batch(batch, [len(c) for c in clips], RATE)
    for row, tokens in enumerate(alone):
        assert np.array_equal(together.tokens[row, : tokens.shape[0]], tokens), f"clip {row}"
    # The raw encoder output of one chunk, at the policy's fixed shape, in two different compositions.
    policy = EncodingPolicy.resolve(codec.encoding, codec.device)
    chunks = torch.stack([torch.from_numpy(c[: 8 * codec.hop]) for c in clips]).unsqueeze(1).cuda()  # [9, 1, L]
    with torch.inference_mode(), canonical_numerics(policy):
        first = codec.encoder(chunks[:8])[0]
        moved = codec.encoder(chunks[[1, 2, 3, 4, 5, 6, 0, 8]])[6]
    assert torch.equal(first, moved)
