"""Mixed-radix packing: golden value, exact inverse, token contract and errors (spec §5, §11.12)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.configs import paper, tiny
from training.models.packing import MixedRadixPacker

PAPER_DIMS = 128


@pytest.fixture(scope="module")
def packer() -> MixedRadixPacker:
    return MixedRadixPacker([4] * PAPER_DIMS, group_size=7)


def test_golden_little_endian_value() -> None:
    # spec §5: the code's order packs (2,1,3,0,2,1,3) to 13 878; the paper's big-endian example gives 10 023.
    packer = MixedRadixPacker([4] * 7)
    assert packer.pack(torch.tensor([2, 1, 3, 0, 2, 1, 3])).tolist() == [13878]
    assert packer.unpack(torch.tensor([13878])).tolist() == [2, 1, 3, 0, 2, 1, 3]
    assert packer.pack(torch.tensor([3, 1, 2, 0, 3, 1, 2])).tolist() != [13878]


@pytest.mark.parametrize("make", [paper, tiny])
@pytest.mark.parametrize("sample_rate", [24_000, 16_000])
def test_token_contract(make, sample_rate: int) -> None:
    config = make(sample_rate)
    packer = MixedRadixPacker(config.fsq.levels, config.fsq.group_size)
    assert packer.num_groups == 19
    assert packer.vocab_size == 16384
    assert packer.group_max == [16383] * 18 + [15]
    assert config.encoder.frame_rate == 2.5
    assert packer.num_groups * config.encoder.frame_rate == 47.5  # tokens per second


def test_extremes(packer: MixedRadixPacker) -> None:
    zeros = torch.zeros(2, 3, PAPER_DIMS, dtype=torch.int64)
    threes = torch.full((2, 3, PAPER_DIMS), 3, dtype=torch.int64)
    assert packer.pack(zeros).eq(0).all()
    assert packer.pack(threes)[..., :18].eq(16383).all()
    assert packer.pack(threes)[..., 18].eq(15).all()
    assert torch.equal(packer.unpack(packer.pack(threes)), threes)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    frames=st.integers(1, 6),
    dims=st.integers(1, 40),
    group_size=st.integers(1, 9),
    max_radix=st.integers(1, 9),
)
def test_pack_unpack_identity_random_radices(
    seed: int, frames: int, dims: int, group_size: int, max_radix: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    radices = torch.randint(1, max_radix + 1, (dims,), generator=generator)
    packer = MixedRadixPacker(radices.tolist(), group_size)
    indices = (torch.rand(frames, dims, generator=generator) * radices).to(torch.int64)
    tokens = packer.pack(indices)
    assert tokens.shape == (frames, -(-dims // group_size))
    assert torch.equal(packer.unpack(tokens), indices)
    # and the other direction: every valid token is hit by exactly one index vector
    assert torch.equal(packer.pack(packer.unpack(tokens)), tokens)


@settings(max_examples=30, deadline=None)
@given(indices=st.lists(st.sampled_from([0, 3]) | st.integers(0, 3), min_size=PAPER_DIMS, max_size=PAPER_DIMS))
def test_pack_unpack_identity_paper(indices: list[int]) -> None:
    packer = MixedRadixPacker([4] * PAPER_DIMS)
    tensor = torch.tensor(indices).view(1, 1, PAPER_DIMS)
    tokens = packer.pack(tensor)
    assert tokens.shape == (1, 1, 19)
    assert int(tokens.max()) < packer.vocab_size
    assert torch.equal(packer.unpack(packer.to_uint16(tokens)), tensor)


def test_every_token_round_trips() -> None:
    packer = MixedRadixPacker([4] * 7)
    tokens = torch.arange(packer.vocab_size).view(-1, 1)
    assert torch.equal(packer.pack(packer.unpack(tokens)), tokens)


def test_frame_major_batches_equal_one_by_one(packer: MixedRadixPacker) -> None:
    indices = torch.randint(0, 4, (3, 5, PAPER_DIMS), generator=torch.Generator().manual_seed(0))
    batched = packer.pack(indices)
    for b in range(3):
        for t in range(5):
            assert torch.equal(batched[b, t], packer.pack(indices[b, t]))


def test_unpack_rejects_out_of_range_token(packer: MixedRadixPacker) -> None:
    tokens = torch.zeros(1, 19, dtype=torch.int64)
    tokens[0, 18] = 16  # the last group only has 16 values
    with pytest.raises(ValueError, match=r"token 16 out of range for group 18.*<= 15"):
        packer.unpack(tokens)
    tokens[0, 18] = 0
    tokens[0, 0] = -1
    with pytest.raises(ValueError, match="out of range for group 0"):
        packer.unpack(tokens)


def test_unpack_rejects_wrong_tokens_per_frame(packer: MixedRadixPacker) -> None:
    with pytest.raises(ValueError, match=r"20 tokens per frame.*expected 19"):
        packer.unpack(torch.zeros(2, 20, dtype=torch.int64))


def test_pack_rejects_bad_indices(packer: MixedRadixPacker) -> None:
    with pytest.raises(ValueError, match="expected 128"):
        packer.pack(torch.zeros(1, 127, dtype=torch.int64))
    with pytest.raises(ValueError, match="out of range"):
        packer.pack(torch.full((1, PAPER_DIMS), 4))
    with pytest.raises(ValueError, match="integer"):
        packer.pack(torch.zeros(1, PAPER_DIMS))


def test_to_uint16_refuses_large_vocab() -> None:
    with pytest.raises(ValueError, match="does not fit uint16"):
        MixedRadixPacker([4] * 9, group_size=9).to_uint16(torch.zeros(1, 1, dtype=torch.int64))
