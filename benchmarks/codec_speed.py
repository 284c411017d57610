"""Encode/decode speed of the `paper` codec on CPU, as seconds of audio per wall second (× real time).

Usage: `python benchmarks/codec_speed.py [--seconds 14.4] [--threads 1,2] [--rates 24000,16000]`

Random weights are fine: speed does not depend on their values. Each figure is the best of `--repeats`
timed runs of the public API (`Codec.encode` / `Codec.decode`, chunking and packing included) after one
warm-up run of the same length (oneDNN builds its kernels per shape). GFLOPs per audio second come from
`torch.utils.flop_counter.FlopCounterMode` on the `meta` device.

Reference points (issue 6, encode on one CPU thread of this kind of machine): EnCodec 24 kHz ≈ 4.8×,
Mimi ≈ 5.7×, DAC 16 kHz ≈ 1.5×; the target is ≥ 10× per thread.

Baseline measured in the same run (issue 12): a *plain conv stack* — the encoder's own input conv, strided convs
and residual blocks with nothing else (no SnakeBeta, DAAM, bottleneck, Conformers, FSQ, packing or chunking) — on
the same audio with the same threads. `enc/plain` = Codec.encode speed ÷ plain-stack speed, so a change to the
tokenizer's own overhead (e.g. the canonical encoding policy) shows up independently of the machine's load.
Each thread count runs under an encoding policy with that many CPU threads (`EncodingSettings.cpu_threads`).

`--channels-last` runs an experiment: every Conv1d/ConvTranspose1d computed as a channels-last 2-D conv
(same weights). On a 2-core AVX2 EPYC it did not help (element-wise ops on time-major tensors fall off
the vectorised path), so the codec does not use it; the flag stays so the result can be re-checked.
Never asserted in CI (STYLE rule 15).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from training.codec import Codec
from training.configs import paper
from training.encoding_policy import EncodingSettings
from training.models.encoder import Encoder
from training.models.hifigan import Generator

REFERENCES = {"EnCodec 24k": 4.8, "Mimi": 5.7, "DAC 16k": 1.5}  # encode, × real time, one thread (issue 6)
TARGET = 10.0  # × real time per thread (issue 6)
FLOP_FRAMES = 36  # one full tokenizer chunk (spec §9)


class _ChannelsLastConv1d(nn.Conv1d):
    """Experiment only: Conv1d as a channels-last Conv2d on [B, C, 1, T]; [B, C, T] -> [B, C', T']."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x2d = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        padding, stride, dilation = (0, int(self.padding[0])), (1, self.stride[0]), (1, self.dilation[0])
        return F.conv2d(x2d, weight, self.bias, stride, padding, dilation, self.groups).squeeze(2)


def _channels_last(model: nn.Module) -> None:
    for module in model.modules():
        if type(module) is nn.Conv1d and module.padding_mode == "zeros" and not isinstance(module.padding, str):
            module.__class__ = _ChannelsLastConv1d


def gflops_per_audio_second(sample_rate: int) -> tuple[float, float]:
    """(encoder, generator) GFLOPs per second of audio for the paper model, counted on the meta device."""
    config = paper(sample_rate)
    seconds = FLOP_FRAMES / config.encoder.frame_rate
    with torch.device("meta"):
        encoder = Encoder(config.encoder).eval()
        generator = Generator(config.decoder, config.encoder.code_dim)
        with FlopCounterMode(display=False) as counter:
            encoder(torch.empty(1, 1, FLOP_FRAMES * config.encoder.hop))
        encode = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            generator(torch.empty(1, config.encoder.code_dim, FLOP_FRAMES))
        decode = counter.get_total_flops()
    return encode / seconds / 1e9, decode / seconds / 1e9


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Warm up once, then the best wall time of `repeats` runs (least disturbed by other processes)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def plain_conv_stack(encoder: Encoder) -> nn.Sequential:
    """The encoder's input conv, strided convs and residual blocks, shared weights, nothing else:
    [B, 1, L] -> [B, C, L // hop]."""
    layers: list[nn.Module] = [encoder.input_conv]
    for block in encoder.blocks:
        layers += [nn.ConstantPad1d(block.padding, 0.0), block.conv, block.res_blocks]
    return nn.Sequential(*layers).eval()


def measure(
    sample_rate: int, threads: int, seconds: float, repeats: int, channels_last: bool
) -> tuple[float, float, float]:
    """(encode, decode, plain stack) speed in × real time for the paper codec at `sample_rate` on `threads`."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    codec = Codec.from_config(paper(sample_rate), encoding=EncodingSettings(cpu_threads=threads)).eval()
    if channels_last:
        _channels_last(codec)
    wav = 0.1 * torch.randn(int(seconds * sample_rate))
    tokens = codec.encode(wav, sample_rate).tokens
    stack = plain_conv_stack(codec.encoder)
    padded = torch.nn.functional.pad(wav, (0, (-wav.shape[0]) % codec.hop)).view(1, 1, -1)

    def plain() -> None:
        with torch.inference_mode():
            stack(padded)

    encode = best_time(lambda: codec.encode(wav, sample_rate), repeats)
    decode = best_time(lambda: codec.decode(tokens, wav.shape[0]), repeats)
    baseline = best_time(plain, repeats)
    return seconds / encode, seconds / decode, seconds / baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=14.4, help="audio length (14.4 s = one full chunk)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--rates", default="24000,16000", help="comma-separated model sample rates")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per figure (best is kept)")
    parser.add_argument("--channels-last", action="store_true", help="experiment: channels-last convs")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    rates = [int(r) for r in args.rates.split(",")]

    print(
        f"paper codec, {args.seconds:g} s of noise, best of {args.repeats}, torch {torch.__version__}, "
        f"channels-last={args.channels_last}"
    )
    header = (
        f"{'rate':>6} {'thr':>3} {'enc ×RT':>8} {'plain ×RT':>9} {'enc/plain':>9} {'dec ×RT':>8} {'enc GF/s':>9} "
        f"{'dec GF/s':>9} {'enc ×RT/thr':>11}"
    )
    header += "".join(f" {'vs ' + name:>13}" for name in REFERENCES) + f" {'vs target':>10}"
    rows = []
    for rate in rates:
        enc_flops, dec_flops = gflops_per_audio_second(rate)
        print(
            f"{rate} Hz: encoder {enc_flops:.1f} GFLOP per audio second, generator {dec_flops:.1f}; "
            f"at {TARGET:g}× real time one thread would need {TARGET * enc_flops:.0f} GFLOP/s"
        )
        for n in threads:
            encode, decode, plain = measure(rate, n, args.seconds, args.repeats, args.channels_last)
            row = (
                f"{rate:>6} {n:>3} {encode:>8.2f} {plain:>9.2f} {encode / plain:>9.2f} {decode:>8.2f} "
                f"{encode * enc_flops:>9.1f} "
                f"{decode * dec_flops:>9.1f} {encode / n:>11.2f}"
            )
            row += "".join(f" {encode / n / ref:>13.2f}" for ref in REFERENCES.values())
            rows.append(row + f" {encode / n / TARGET:>10.2f}")
    print(header)
    print("\n".join(rows))
    print(
        "×RT = seconds of audio per wall second; 'vs' columns = per-thread encode speed / reference "
        f"({', '.join(f'{k} {v}×' for k, v in REFERENCES.items())}, target {TARGET:g}×)."
    )


if __name__ == "__main__":
    main()
