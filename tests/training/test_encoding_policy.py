"""Canonical encoding (issue 12): chunking, fixed batch shapes, thread-independent and golden tokens."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from training.codec import Codec
from training.configs import tiny
from training.encoding_policy import (
    EncodingPolicy,
    EncodingSettings,
    canonical_numerics,
    fixed_shape_groups,
    split_frames,
)

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden_tokens.json"
GOLDEN_SEED = 20261202
GOLDEN_RATE = 16_000
GOLDEN_SECONDS = 16.3  # 41 frames at 2.5 Hz: two near-equal chunks (21 + 20) under the default 36-frame limit


@given(frames=st.integers(1, 500), limit=st.integers(1, 60))
def test_split_frames_is_near_equal_and_within_the_limit(frames: int, limit: int) -> None:
    sizes = split_frames(frames, limit)
    assert sum(sizes) == frames and max(sizes) <= limit
    assert max(sizes) - min(sizes) <= 1 and len(sizes) == -(-frames // limit)
    assert sizes == sorted(sizes, reverse=True)


def test_a_37_frame_clip_gives_19_and_18() -> None:
    assert split_frames(37, 36) == [19, 18] and split_frames(36, 36) == [36] and split_frames(72, 36) == [36, 36]


@given(lengths=st.lists(st.integers(1, 4), max_size=30), batch=st.integers(1, 5))
def test_fixed_shape_groups_cover_every_position_in_full_groups(lengths: list[int], batch: int) -> None:
    groups = fixed_shape_groups(lengths, batch)
    assert all(len(group) == batch for group in groups)
    assert all(len({lengths[i] for i in group}) == 1 for group in groups)
    assert sorted({i for group in groups for i in group}) == list(range(len(lengths)))
    assert sum(len(set(group)) for group in groups) == len(lengths)  # each position in exactly one group


def test_a_chunks_encoder_output_is_bit_identical_in_any_batch_composition() -> None:
    """The property the policy rests on: at a fixed batch shape, a row's output depends on nothing else."""
    torch.manual_seed(0)
    codec = Codec.from_config(tiny(16_000)).eval()
    chunks = 0.1 * torch.randn(7, 1, 9 * codec.hop)  # [7, 1, L] chunks of 9 frames
    policy = EncodingPolicy.resolve(EncodingSettings(cpu_batch_chunks=4), codec.device)
    with torch.inference_mode(), canonical_numerics(policy):
        first = codec.encoder(chunks[[0, 1, 2, 3]])[0]
        repeats = codec.encoder(chunks[[0, 0, 0, 0]])[0]
        moved = codec.encoder(chunks[[4, 5, 0, 6]])[2]
    assert torch.equal(first, repeats) and torch.equal(first, moved)


def test_tokens_do_not_depend_on_the_callers_thread_count() -> None:
    torch.manual_seed(1)
    codec = Codec.from_config(tiny(16_000))
    wav = 0.1 * np.random.default_rng(1).standard_normal(40_000).astype(np.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.encode(wav, 16_000).tokens
        torch.set_num_threads(4)
        many = codec.encode(wav, 16_000).tokens
        assert torch.get_num_threads() == 4  # the policy restores the caller's setting
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(one, many)


def test_policy_is_recorded_with_the_codec(tmp_path: Path) -> None:
    codec = Codec.from_config(tiny(), encoding=EncodingSettings(cpu_batch_chunks=2))
    codec.save(tmp_path)
    policy = Codec.load(tmp_path).encoding_policy
    assert policy.batch_chunks == 2 and policy.device_type == "cpu" and policy.cpu_threads == 1
    assert policy.torch_version == torch.__version__ and policy.max_chunk_frames == 36
    assert policy.policy_id == EncodingPolicy.resolve(codec.encoding, torch.device("cpu")).policy_id
    with pytest.raises(ValueError, match="must be >= 1"):
        EncodingSettings(cpu_batch_chunks=0)


def golden_clip() -> np.ndarray:
    """A seeded speech-like clip: a few harmonics under a syllable-rate envelope plus noise, [L] float32."""
    rng = np.random.default_rng(GOLDEN_SEED)
    t = np.arange(int(GOLDEN_SECONDS * GOLDEN_RATE)) / GOLDEN_RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / GOLDEN_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3.1 * t))
    return (0.3 * envelope * voiced + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def golden_codec() -> Codec:
    torch.manual_seed(GOLDEN_SEED)
    return Codec.from_config(tiny(GOLDEN_RATE))


def test_golden_tokens() -> None:
    """A seeded tiny codec on a seeded clip gives exactly the committed tokens: any change to the model, the
    chunking or the policy that moves a token fails here. Regenerate deliberately with
    `SPEECHTOK_UPDATE_GOLDEN=1 pytest tests/training/test_encoding_policy.py -k golden` and say why in the commit.
    """
    codec = golden_codec()
    result = codec.encode(golden_clip(), GOLDEN_RATE)
    if os.environ.get("SPEECHTOK_UPDATE_GOLDEN") == "1":
        payload = {
            "about": "tokens of tests/training/test_encoding_policy.py::golden_clip under golden_codec",
            "policy": json.loads(codec.encoding_policy.to_json()),
            "num_samples": result.num_samples,
            "tokens": result.tokens.tolist(),
        }
        GOLDEN.write_text(json.dumps(payload) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert result.num_samples == golden["num_samples"]
    assert result.tokens.shape == (41, 19)
    expected = np.asarray(golden["tokens"], dtype=np.uint16)
    differing = int((result.tokens != expected).sum())
    assert differing == 0, f"{differing} of {expected.size} tokens differ from {GOLDEN.name}"
