"""GPU (or CPU) side of the Ray Data pipeline: a stateful actor that encodes decoded audio to tokens."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from training.registry import ModelFiles


class CodecEncoder:
    """Ray Data `map_batches` callable class: the codec is loaded once per actor, then each call encodes a batch.

    `codec` is the registered version's files (`training.registry.ModelFiles`), or a Ray object reference to them:
    the driver puts them in the object store once, and each actor, wherever it runs, writes them into its own
    scratch folder to load them. Nothing names a path on the driver, which another node could not open (issue 10).

    Input batch (numpy format): `key`, `shard`, `audio` (float32 bytes at the codec rate), `error`.
    Output: `key`, `shard`, `tokens` (uint16 bytes, frame-major: [n_frames, tokens_per_frame] flattened),
    `n_frames` (int32), `policy` (the canonical encoding policy as JSON) and `error`; error rows pass through
    with no tokens.

    Rows are sorted by length and encoded in groups whose padded size stays under `batch_seconds`, so little
    padding is built (and none reaches the model: `Codec.encode_batch` only batches equal-length chunks). Under
    the canonical policy the tokens do not depend on this grouping, on `batch_seconds` or on the actor count.
    """

    def __init__(
        self,
        codec: ModelFiles | Any,
        batch_seconds: float = 120.0,
        chunks_per_forward: int | None = None,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if threads is not None:
            # Ray only sets OMP_NUM_THREADS for whole-CPU reservations; with fractional ones torch would start a
            # thread per core in every actor and oversubscribe the machine (2 actors on 2 cores ran 3x slower).
            torch.set_num_threads(threads)
        files = codec if isinstance(codec, ModelFiles) else _from_object_store(codec)
        self.codec = files.load_codec(map_location=chosen)
        if chunks_per_forward is not None:  # a different batch shape is a different (recorded) policy
            field = "cuda_batch_chunks" if self.codec.device.type == "cuda" else "cpu_batch_chunks"
            self.codec.encoding = replace(self.codec.encoding, **{field: chunks_per_forward})
        self.policy = self.codec.encoding_policy.to_json()
        self.max_padded_samples = max(1, int(batch_seconds * self.codec.sample_rate))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        keys = [str(k) for k in batch["key"]]
        errors = [str(e) for e in batch["error"]]
        tokens = np.empty(len(keys), dtype=object)
        frames = np.zeros(len(keys), dtype=np.int32)
        tokens[:] = [b""] * len(keys)
        audio = {i: np.frombuffer(batch["audio"][i], dtype=np.float32) for i, e in enumerate(errors) if not e}
        for group in self._groups(audio):
            encoded = self.encode_group([audio[i] for i in group])
            for i, clip_tokens in zip(group, encoded, strict=True):
                tokens[i] = clip_tokens.tobytes()
                frames[i] = clip_tokens.shape[0]
        return {
            "key": np.asarray(keys, dtype=object),
            "shard": np.asarray([str(s) for s in batch["shard"]], dtype=object),
            "tokens": tokens,
            "n_frames": frames,
            "policy": np.asarray([self.policy] * len(keys), dtype=object),
            "error": np.asarray(errors, dtype=object),
        }

    def encode_group(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Clips at the codec rate → tokens per clip: list of [L_i] -> list of [T_i, tokens_per_frame] uint16."""
        lengths = [len(c) for c in clips]
        padded = np.zeros((len(clips), max(lengths)), dtype=np.float32)  # [B, L_max]
        for row, clip in enumerate(clips):
            padded[row, : len(clip)] = clip
        result = self.codec.encode_batch(padded, lengths, self.codec.sample_rate)
        return [result.tokens[b, : result.num_frames[b]] for b in range(len(clips))]

    def _groups(self, audio: dict[int, np.ndarray]) -> list[list[int]]:
        """Row positions sorted by length, cut so that rows × longest length ≤ the padded-sample budget."""
        groups: list[list[int]] = []
        current: list[int] = []
        for i in sorted(audio, key=lambda i: len(audio[i])):
            if current and (len(current) + 1) * len(audio[i]) > self.max_padded_samples:
                groups.append(current)
                current = []
            current.append(i)
        return [*groups, current] if current else groups


def _from_object_store(reference: Any) -> ModelFiles:
    """The `ModelFiles` behind a Ray object reference (Ray resolves only top-level actor arguments itself)."""
    import ray

    files = ray.get(reference)
    if not isinstance(files, ModelFiles):
        raise TypeError(f"CodecEncoder needs a codec's ModelFiles (or a reference to them), got {type(files).__name__}")
    return files
