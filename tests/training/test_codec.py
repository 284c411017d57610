"""Codec API: the token contract, round trips across sample rates, batching, chunking, persistence (spec §9)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from training.codec import META_FILE, WEIGHTS_FILE, Codec
from training.configs import tiny
from training.encoding_policy import EncodingSettings

INPUT_RATE = 16_000


def _clip(seconds: float, sample_rate: int = INPUT_RATE, seed: int = 0) -> torch.Tensor:
    """A speech-like test clip: a few harmonics under a slow envelope plus a little noise, [L] float32."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 110 + 40 * torch.rand((), generator=generator)
    voiced = sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - torch.cos(2 * math.pi * 1.5 * t))
    noise = 0.01 * torch.randn(t.shape, generator=generator)
    return (0.3 * envelope * voiced + noise).float()


@pytest.fixture(scope="module", params=[24_000, 16_000], ids=["24k", "16k"])
def codec(request: pytest.FixtureRequest) -> Codec:
    torch.manual_seed(0)
    return Codec.from_config(tiny(request.param))


def test_token_contract_is_exposed_as_properties(codec: Codec) -> None:
    assert codec.frame_rate == 2.5
    assert codec.tokens_per_frame == 19
    assert codec.vocab_size == 16_384
    assert codec.tokens_per_second == 47.5
    assert codec.hop == codec.sample_rate // 2.5


def test_round_trip_returns_the_original_length_and_rate(codec: Codec) -> None:
    wav = _clip(1.7)  # 27 200 samples at 16 kHz: not a whole number of frames at either model rate
    result = codec.encode(wav, INPUT_RATE)
    frames = math.ceil(1.7 * codec.frame_rate)
    assert result.tokens.shape == (frames, 19) and result.tokens.dtype == np.uint16
    assert int(result.tokens.max()) < codec.vocab_size
    assert result.num_samples == wav.shape[0] and result.sample_rate == INPUT_RATE

    audio = codec.decode(result.tokens, result.num_samples, result.sample_rate)
    assert audio.shape == wav.shape and audio.dtype == torch.float32
    assert audio.abs().max() <= 1.0
    assert codec.decode(result.tokens).shape == (frames * codec.hop,)  # model rate, uncropped
    as_tensor = codec.decode(torch.from_numpy(result.tokens), result.num_samples, result.sample_rate)
    torch.testing.assert_close(as_tensor, audio, rtol=0, atol=0)  # torch uint16 works like numpy


def test_encode_is_deterministic_even_in_train_mode(codec: Codec) -> None:
    codec.train()
    wav = _clip(0.8, seed=1)
    first, second = codec.encode(wav, INPUT_RATE), codec.encode(wav, INPUT_RATE)
    assert np.array_equal(first.tokens, second.tokens)
    assert codec.encoder.training  # mode restored after tokenising (spec §11.15)
    codec.eval()


def test_stereo_is_downmixed(codec: Codec) -> None:
    left, right = _clip(0.8, seed=2), _clip(0.8, seed=3)
    stereo = codec.encode(torch.stack([left, right]).numpy(), INPUT_RATE)
    assert np.array_equal(stereo.tokens, codec.encode((left + right) / 2, INPUT_RATE).tokens)


def test_batch_equals_one_by_one(codec: Codec) -> None:
    clips = [_clip(1.2, seed=4), _clip(0.5, seed=5), _clip(1.2, seed=6)]  # two share a length and a batch
    padded = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    batch = codec.encode_batch(padded, [len(c) for c in clips], INPUT_RATE)
    singles = [codec.encode(c, INPUT_RATE) for c in clips]
    assert batch.tokens.shape == (3, 3, 19)
    assert batch.num_frames.tolist() == [s.tokens.shape[0] for s in singles]
    for row, single in zip(batch.tokens, singles, strict=True):
        assert np.array_equal(row[: single.tokens.shape[0]], single.tokens)

    decoded = codec.decode_batch(batch.tokens, batch.num_frames, batch.num_samples, INPUT_RATE)
    for audio, single in zip(decoded, singles, strict=True):
        expected = codec.decode(single.tokens, single.num_samples, INPUT_RATE)
        torch.testing.assert_close(audio, expected, rtol=0, atol=1e-5)


def test_long_audio_is_encoded_in_near_equal_hop_aligned_chunks() -> None:
    torch.manual_seed(0)
    codec = Codec.from_config(tiny(), encoding=EncodingSettings(max_chunk_frames=3))
    wav = _clip(2.8, sample_rate=24_000, seed=7)  # 7 frames -> chunks of 3, 2 and 2 frames (never a 1-frame tail)
    tokens = codec.encode(wav, 24_000).tokens
    hop = codec.hop
    pieces = [wav[: 3 * hop], wav[3 * hop : 5 * hop], wav[5 * hop :]]
    assert np.array_equal(tokens, np.concatenate([codec.encode(p, 24_000).tokens for p in pieces]))
    assert codec.decode(tokens, wav.shape[0]).shape == wav.shape
    # With 4 chunks per forward, the two 2-frame chunks share one forward (plus 2 repeats) when encoded together
    # and each runs with 3 repeats of itself when encoded alone: the tokens must not differ (issue 12).
    batched = Codec.from_config(tiny(), encoding=EncodingSettings(max_chunk_frames=3, cpu_batch_chunks=4))
    batched.load_state_dict(codec.state_dict())
    together = batched.encode(wav, 24_000).tokens
    assert np.array_equal(together, np.concatenate([batched.encode(p, 24_000).tokens for p in pieces]))


def test_save_load_round_trip(codec: Codec, tmp_path: Path) -> None:
    wav = _clip(0.9, seed=8)
    codec.save(tmp_path)
    loaded = Codec.load(tmp_path)
    assert loaded.config == codec.config
    assert np.array_equal(loaded.encode(wav, INPUT_RATE).tokens, codec.encode(wav, INPUT_RATE).tokens)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["format_version"] == 1 and meta["tokens_per_frame"] == 19
    assert EncodingSettings.from_json(meta["encoding"]) == codec.encoding == loaded.encoding


def test_unknown_format_version_is_refused(codec: Codec, tmp_path: Path) -> None:
    codec.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match=r"codec\.json.*version 99"):
        Codec.load(tmp_path)


def test_mismatched_weights_are_refused(codec: Codec, tmp_path: Path) -> None:
    codec.save(tmp_path)
    state = torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)
    state.pop("generator.output_conv.bias")
    torch.save(state, tmp_path / WEIGHTS_FILE)
    with pytest.raises(ValueError, match=r"missing keys \['generator\.output_conv\.bias'\]"):
        Codec.load(tmp_path)


def test_bad_tokens_raise_clear_errors(codec: Codec) -> None:
    good = np.zeros((2, 19), dtype=np.uint16)
    with pytest.raises(ValueError, match="expected \\[frames, 19\\]"):
        codec.decode(good[:, :18])
    too_big = good.copy()
    too_big[1, 3] = 16_384
    with pytest.raises(ValueError, match="token 16384 out of range for group 3"):
        codec.decode(too_big)
    last_group = good.copy()
    last_group[0, 18] = 16  # the last group holds 2 real dims: only 16 values (spec §5)
    with pytest.raises(ValueError, match="group 18"):
        codec.decode(last_group)
    with pytest.raises(ValueError, match="dtype"):
        codec.decode(good.astype(np.float32))


def test_bad_audio_raises_clear_errors(codec: Codec) -> None:
    with pytest.raises(ValueError, match="empty"):
        codec.encode(np.zeros(0, dtype=np.float32), INPUT_RATE)
    with pytest.raises(ValueError, match="shape"):
        codec.encode(np.zeros((1, 2, 100), dtype=np.float32), INPUT_RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        codec.encode(_clip(0.1), 0)
