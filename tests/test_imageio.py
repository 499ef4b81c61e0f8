"""The one pixel <-> tensor pair and the channel policy (ric.imageio)."""

import numpy as np
import pytest
import torch

from ric.imageio import as_channels, channel_view, luma, to_pixels, to_tensor


def test_pixels_tensor_round_trip_is_exact():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    x = to_tensor(a)
    assert x.shape == (3, 3, 5, 7) and x.dtype == torch.float32 and float(x.max()) <= 1
    assert np.array_equal(to_pixels(x), a)
    assert to_tensor(a[0]).shape == (1, 3, 5, 7)  # one image gets a batch axis
    assert np.array_equal(to_pixels(to_tensor(a[0])[0]), a[0])  # C×H×W back to H×W×C


def test_to_pixels_rounds_and_clamps():
    x = torch.tensor([[[[-0.2, 0.5 / 255, 1.6 / 255, 1.3]]]])
    assert to_pixels(x).ravel().tolist() == [0, 0, 2, 255]


def test_channel_policy_grey_and_rgb():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (4, 4, 1), dtype=np.uint8)
    rgb = channel_view(g, 3)
    assert rgb.shape == (4, 4, 3) and all(np.array_equal(rgb[..., i], g[..., 0]) for i in range(3))
    assert np.array_equal(channel_view(rgb, 1), g)  # luma of replicated grey is the grey
    c = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    assert np.array_equal(channel_view(c, 1), luma(c))
    with pytest.raises(ValueError):
        channel_view(rng.integers(0, 256, (4, 4, 2), dtype=np.uint8), 3)
    xt = to_tensor(g)
    assert np.array_equal(to_pixels(as_channels(as_channels(xt, 3), 1)), to_pixels(xt))  # same 8-bit levels
