"""BEiT relative-position machinery against the transformers implementation (parity ladder step 1)."""

import numpy as np
import pytest
import torch
from numerics import rel_l2
from transformers import BeitConfig
from transformers.models.beit.modeling_beit import BeitRelativePositionBias

from zoejax.models.backbones.beit import (
    expand_relative_position_table,
    relative_position_index,
    resize_relative_position_table,
)


def relative_position_bias(table, pretrain_window, window):
    """The (heads, N+1, N+1) bias BEiT's attention adds for a ``window`` patch grid: the stored table resized to
    the window and gathered by the index (``Attention`` hands both to ``zoejax.ops.attention``)."""
    resized = np.asarray(resize_relative_position_table(table, pretrain_window, window))
    return resized[relative_position_index(tuple(window))].transpose(2, 0, 1)


@pytest.mark.parametrize("window", [(4, 4), (2, 3), (24, 24), (24, 32), (30, 40)])
def test_relative_position_index_matches_reference(window):
    ref = BeitRelativePositionBias.generate_relative_position_index.__wrapped__(window).numpy()
    np.testing.assert_array_equal(relative_position_index(window), ref)


@pytest.mark.parametrize("window", [(24, 24), (24, 32), (24, 48), (32, 24), (12, 40)])
def test_relative_position_bias_resize_matches_reference(window):
    cfg = BeitConfig(image_size=384, patch_size=16, num_attention_heads=4, use_relative_position_bias=True)
    module = BeitRelativePositionBias(cfg)
    table = torch.randn(module.relative_position_bias_table.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        module.relative_position_bias_table.copy_(table)
        ref = module(window, interpolate_pos_encoding=False)[0].numpy()
    ours = np.asarray(relative_position_bias(table.numpy(), (24, 24), window))
    assert ours.shape == ref.shape == (4, window[0] * window[1] + 1, window[0] * window[1] + 1)
    assert rel_l2(ours, ref) < 1e-6


def test_same_window_is_identity():
    table = np.random.default_rng(0).normal(size=(7 * 7 + 3, 2)).astype(np.float32)
    bias = np.asarray(relative_position_bias(table, (4, 4), (4, 4)))
    index = relative_position_index((4, 4))
    np.testing.assert_array_equal(bias, table[index].transpose(2, 0, 1))


@pytest.mark.parametrize("window", [(3, 5), (24, 32), (1, 4)])
def test_bias_expanded_by_matmuls_equals_the_table_gathered_by_index(window):
    # The GPU/TPU path builds the bias with one-hot matmuls; it must be the table's entries exactly.
    rows = (2 * window[0] - 1) * (2 * window[1] - 1) + 3
    table = np.random.default_rng(1).normal(size=(rows, 3)).astype(np.float32)
    index = relative_position_index(window)
    np.testing.assert_array_equal(np.asarray(expand_relative_position_table(table, window)),
                                  table[index].transpose(2, 0, 1))
