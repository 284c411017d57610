"""Conformer block: parameter counts, shapes, no positional encoding, order (spec §2.3)."""

from __future__ import annotations

import pytest
import torch

from training.models.conformer import ConformerBlock, ConformerConvModule, FeedForward, conformer_stack


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("dim", "heads", "expected"), [(128, 16, 384_640), (256, 16, 1_522_944)])
def test_parameter_counts_match_spec(dim: int, heads: int, expected: int) -> None:
    with torch.device("meta"):
        assert _count(ConformerBlock(dim, heads)) == expected


def test_shapes_and_final_layer_norm() -> None:
    block = ConformerBlock(32, 4, kernel_size=7).eval()
    x = torch.randn(2, 11, 32)
    y = block(x)
    assert y.shape == (2, 11, 32)
    # output is the final LayerNorm's: zero mean, unit variance per position (default affine)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 11), atol=1e-5, rtol=0)
    assert FeedForward(32)(x).shape == x.shape
    assert ConformerConvModule(32, 7)(x.transpose(1, 2)).shape == (2, 32, 11)


def test_no_positional_encoding_attention_is_permutation_equivariant() -> None:
    # Without positional encoding the attention sub-layer commutes with permuting time.
    block = ConformerBlock(16, 2, kernel_size=3).eval()
    x = torch.randn(1, 9, 16)
    perm = torch.randperm(9)
    torch.testing.assert_close(block.attn(x)[:, perm], block.attn(x[:, perm]), atol=1e-5, rtol=1e-5)


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    torch.manual_seed(0)
    stack = conformer_stack(2, 16, 2, kernel_size=3, dropout=0.5)
    x = torch.randn(2, 7, 16)
    stack.eval()
    assert torch.equal(stack(x), stack(x))
    stack.train()
    assert not torch.equal(stack(x), stack(x))


def test_batch_equals_one_by_one() -> None:
    block = ConformerBlock(16, 2, kernel_size=5).eval()
    x = torch.randn(3, 8, 16)
    batched = block(x)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], block(x[i : i + 1]), atol=1e-5, rtol=1e-5)


def test_rejects_bad_heads_and_kernel() -> None:
    with pytest.raises(ValueError, match="not divisible by heads"):
        ConformerBlock(30, 4)
    with pytest.raises(ValueError, match="odd"):
        ConformerConvModule(16, 4)
