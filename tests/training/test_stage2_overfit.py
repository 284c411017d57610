"""Stage-2 sanity: the tiny generator, behind a frozen tiny encoder + FSQ, overfits one 1.6 s clip (spec §7, §12)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from training.codec import Codec
from training.configs import tiny
from training.losses import MultiResolutionSTFTLoss, waveform_l1

STEPS = 20  # ~0.3 s per step on one CPU thread
LEARNING_RATE = 2e-3  # higher than the paper's 1.5e-4 so the check finishes in seconds
BETAS = (0.8, 0.99)  # spec §8


def _clip(num_samples: int, sample_rate: int) -> torch.Tensor:
    """Harmonic tone under a slow envelope plus light noise: [1, 1, L]."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(num_samples) / sample_rate
    voiced = sum(torch.sin(2 * math.pi * k * 130 * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - torch.cos(2 * math.pi * 1.5 * t))
    wav = 0.3 * envelope * voiced + 0.01 * torch.randn(t.shape, generator=generator)
    return wav.float().view(1, 1, -1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: with other processes on the 2 cores, OpenMP's spinning threads slow each step ~5×."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_tiny_generator_overfits_one_clip() -> None:
    torch.manual_seed(0)
    config = tiny(16_000)  # LibriLight's native rate; hop 6400
    codec = Codec.from_config(config)
    y = _clip(4 * codec.hop, codec.sample_rate)  # 4 frames = 1.6 s (spec §12.A)

    codec.encoder.requires_grad_(False).eval()  # stage 2 freezes the encoder (spec §11.14, §11.15)
    with torch.no_grad():
        values = codec.fsq(codec.encoder(y)).values  # [1, 128, 4]
    stft = MultiResolutionSTFTLoss(config.loss.stft_resolutions)
    optimiser = torch.optim.AdamW(codec.generator.parameters(), lr=LEARNING_RATE, betas=BETAS)

    losses = []
    for _ in range(STEPS):
        y_hat = codec.generator(values)
        loss = config.loss.waveform_weight * waveform_l1(y_hat, y) + config.loss.stft_weight * stft(y_hat, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())

    assert all(p.grad is None for p in codec.encoder.parameters())
    final = sum(losses[-3:]) / 3
    assert final <= 0.5 * losses[0], losses
    assert final < sum(losses[5:8]) / 3, losses  # still improving after the first big drop
