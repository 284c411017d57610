"""Paper-config encode throughput on one GPU: audio seconds per second at several batch shapes, and peak memory.

Usage: `python benchmarks/gpu_tokenize.py [--rate 16000] [--batches 1,4,8,16,32] [--chunks 64]`
(`make gpu-check` runs it after `pytest -m gpu`).

Each forward runs the encoder + FSQ + packing of `Codec._encode_chunks` on full 14.4 s chunks (36 frames, spec §9)
under the canonical encoding policy (fp32, TF32 off, deterministic kernels): the batch shape *is* the policy's
`cuda_batch_chunks`, so this table is how to choose it. A second column shows the same forward with TF32 and
cuDNN benchmarking allowed (not canonical: tokens may then depend on shapes), to show what determinism costs.
Random weights: speed does not depend on their values. Baseline in the same run: batch shape 1.
Never asserted in CI (STYLE rule 15).
"""

from __future__ import annotations

import argparse
import time

import torch

from training.codec import Codec
from training.configs import paper
from training.encoding_policy import EncodingSettings


def throughput(codec: Codec, batch: int, chunks: int, canonical: bool) -> tuple[float, float]:
    """(audio s per wall s, peak GiB) encoding `chunks` 14.4 s chunks `batch` at a time."""
    length = codec.max_chunk_frames * codec.hop
    wav = [0.1 * torch.randn(length, device="cuda") for _ in range(batch)]
    codec.encoding = EncodingSettings(cuda_batch_chunks=batch)
    run = codec._encode_chunks
    if not canonical:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

        def run(chunks_: list[torch.Tensor]) -> list[torch.Tensor]:
            with torch.inference_mode():
                indices = codec.fsq(codec.encoder(torch.stack(chunks_).unsqueeze(1))).indices
                return list(codec.packer.pack(indices).cpu())

    with torch.inference_mode():
        run(wav)  # warm-up (kernel selection, allocator)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        forwards = max(1, chunks // batch)
        started = time.perf_counter()
        for _ in range(forwards):
            run(wav)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    seconds = forwards * batch * length / codec.sample_rate
    return seconds / elapsed, torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=16_000, help="model sample rate (LibriLight is 16 kHz)")
    parser.add_argument("--batches", default="1,4,8,16,32", help="comma-separated chunks per forward")
    parser.add_argument("--chunks", type=int, default=64, help="chunks encoded per measurement")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_tokenize: no CUDA device; run it on a GPU machine (see README, 'GPU checks')")
    torch.manual_seed(0)
    codec = Codec.from_config(paper(args.rate)).to("cuda").eval()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, paper codec at {args.rate} Hz, 14.4 s chunks")
    print(f"{'batch':>5} {'canonical audio s/s':>20} {'peak GiB':>9} {'vs batch 1':>10} {'TF32+benchmark s/s':>19}")
    baseline = None
    for batch in (int(b) for b in args.batches.split(",")):
        canonical, peak = throughput(codec, batch, args.chunks, canonical=True)
        fast, _ = throughput(codec, batch, args.chunks, canonical=False)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        baseline = baseline or canonical
        print(f"{batch:>5} {canonical:>20.0f} {peak:>9.2f} {canonical / baseline:>9.2f}× {fast:>19.0f}")


if __name__ == "__main__":
    main()
