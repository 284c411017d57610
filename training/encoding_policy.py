"""Canonical encoding: the rules that make a codec's tokens bit-identical however segments are batched (issue 12).

The encoder's output for one chunk depends, in its last bits, on the shape of the forward it ran in (kernels
pick algorithms and reduction splits by shape), on the number of CPU threads (oneDNN splits reductions by
thread count) and, on GPU, on TF32 and non-deterministic kernels. A value that lands that close to an FSQ
boundary flips a token. So every forward of the tokenizer runs under one policy:

- chunks: a clip of F frames is cut into ⌈F / max_chunk_frames⌉ near-equal chunks (37 → 19 + 18), so no chunk is
  a 1–3 frame tail, shorter than anything seen in training;
- batch shape: every encoder forward holds exactly `batch_chunks` chunks of one length; a group with fewer is
  filled with copies of its first member (whose outputs are dropped). Measured on CPU: with the shape fixed, a
  chunk's output does not depend on its row or on the other rows;
- numerics: fp32 encoder, a fixed CPU thread count, and on GPU TF32 off, cuDNN deterministic and not
  benchmarking, deterministic algorithms.

`EncodingSettings` are saved with the codec; `EncodingPolicy` is what was in force for one run (settings plus
device type, torch version, CPU capability) and is recorded in every token file and table manifest, so a reader
can tell whether two tables are comparable bit for bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

POLICY_VERSION = 1
# spec §9: 36 hops = 14.4 s per chunk, inside the 15 s training maximum (spec §1).
DEFAULT_MAX_CHUNK_FRAMES = 36
# One chunk per forward on CPU: batching gains little there, and filling groups with copies would waste work
# on the mostly distinct chunk lengths of a batch of segments. GPUs need wider forwards to be busy.
DEFAULT_CPU_BATCH_CHUNKS = 1
DEFAULT_CUDA_BATCH_CHUNKS = 8
# CPU tokenization scales by actors (one core each), so one intra-op thread is both canonical and efficient.
DEFAULT_CPU_THREADS = 1
# cuBLAS is only deterministic with a fixed workspace configuration (CUDA docs, "Results reproducibility").
_CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class EncodingSettings:
    """The codec's part of the policy, saved in `codec.json`."""

    max_chunk_frames: int = DEFAULT_MAX_CHUNK_FRAMES
    cpu_batch_chunks: int = DEFAULT_CPU_BATCH_CHUNKS
    cuda_batch_chunks: int = DEFAULT_CUDA_BATCH_CHUNKS
    cpu_threads: int = DEFAULT_CPU_THREADS

    def __post_init__(self) -> None:
        bad = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) < 1}
        if bad:
            raise ValueError(f"encoding settings {bad} must be >= 1 (defaults: {asdict(EncodingSettings())})")

    def batch_chunks(self, device_type: str) -> int:
        return self.cuda_batch_chunks if device_type == "cuda" else self.cpu_batch_chunks

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EncodingSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in known and v is not None})


@dataclass(frozen=True)
class EncodingPolicy:
    """Everything that decides the bits of a token: recorded with every token file."""

    version: int
    device_type: str
    dtype: str
    max_chunk_frames: int
    batch_chunks: int
    cpu_threads: int | None  # intra-op threads of CPU forwards; None on GPU
    torch_version: str
    cpu_capability: str | None  # the CPU kernels torch dispatches to (e.g. AVX2); None on GPU

    @classmethod
    def resolve(cls, settings: EncodingSettings, device: torch.device) -> EncodingPolicy:
        on_cpu = device.type == "cpu"
        return cls(
            version=POLICY_VERSION,
            device_type=device.type,
            dtype="float32",
            max_chunk_frames=settings.max_chunk_frames,
            batch_chunks=settings.batch_chunks(device.type),
            cpu_threads=settings.cpu_threads if on_cpu else None,
            torch_version=torch.__version__,
            cpu_capability=torch.backends.cpu.get_cpu_capability() if on_cpu else None,
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal policies give equal strings."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def policy_id(self) -> str:
        """A short digest of the policy, for tables and logs."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def split_frames(num_frames: int, max_chunk_frames: int) -> list[int]:
    """Near-equal chunk sizes, longest first, none over `max_chunk_frames`: 37, 36 -> [19, 18]; 72 -> [36, 36]."""
    if num_frames <= 0:
        return []
    count = -(-num_frames // max_chunk_frames)
    base, longer = divmod(num_frames, count)
    return [base + 1] * longer + [base] * (count - longer)


def fixed_shape_groups(lengths: list[int], batch_chunks: int) -> list[list[int]]:
    """Positions of equal lengths in groups of exactly `batch_chunks`, the last one filled with repeats of its
    first member (a repeated position's output is simply computed twice). First-seen order.
    """
    by_length: dict[int, list[int]] = {}
    for position, length in enumerate(lengths):
        by_length.setdefault(length, []).append(position)
    groups = []
    for members in by_length.values():
        for start in range(0, len(members), batch_chunks):
            group = members[start : start + batch_chunks]
            groups.append(group + [group[0]] * (batch_chunks - len(group)))
    return groups


@contextlib.contextmanager
def canonical_numerics(policy: EncodingPolicy) -> Iterator[None]:
    """Run the block under the policy's numerics; every global setting is restored afterwards."""
    if policy.device_type == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(policy.cpu_threads or 1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)  # effective before cuBLAS starts
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        ) = saved[:4]
        torch.use_deterministic_algorithms(saved[4])
