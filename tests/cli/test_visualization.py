"""keraszoo.visualization: grid geometry, PNG strips and the latent manifold (Pillow only, no model)."""

import numpy as np
import pytest
from PIL import Image

from keraszoo import visualization as vis


def test_grid_geometry_border_and_scaling():
    x = np.zeros((5, 28, 28, 1), np.float32)
    x[2] = 1.0
    grid = vis.make_grid(x, ncols=3)
    # 28 px tiles are drawn at 2x: 3 columns x 2 rows of 56 px with 2 px borders.
    assert grid.shape == (2 * 56 + 3 * 2, 3 * 56 + 4 * 2) and grid.dtype == np.uint8
    assert (grid[:2] == vis.BORDER_VALUE).all() and (grid[:, :2] == vis.BORDER_VALUE).all()
    assert (grid[2:58, 2 + 2 * 58:2 + 2 * 58 + 56] == 255).all()  # tile 2 is white
    assert (grid[60:116, 118:174] == vis.BORDER_VALUE).all()  # the empty 6th slot
    assert vis.make_grid(x).shape == vis.make_grid(x, ncols=3).shape  # ceil(sqrt(5)) = 3 columns
    assert vis.make_grid(x, ncols=3, scale=1, border=0).shape == (56, 84)
    assert vis.auto_scale(28, 28) == 2 and vis.auto_scale(16, 16) == 4 and vis.auto_scale(64, 64) == 1
    rgb = vis.make_grid(np.random.default_rng(0).random((4, 32, 32, 3)))
    assert rgb.shape == (2 * 64 + 6, 2 * 64 + 6, 3)


def test_comparison_and_strips(tmp_path):
    a = np.zeros((3, 28, 28, 1), np.float32)
    b = np.ones((3, 28, 28, 1), np.float32)
    grid = vis.comparison_grid(a, b, ncols=2)
    assert grid.shape == (4 * 56 + 5 * 2, 2 * 56 + 3 * 2)  # two (top, bottom) row pairs
    assert (grid[2:58, 2:58] == 0).all() and (grid[60:116, 2:58] == 255).all()
    with pytest.raises(ValueError, match="same shape"):
        vis.comparison_grid(a, b[:2])
    path = vis.save_strip(np.zeros((2, 5, 28, 28, 1)), tmp_path / "sub" / "strip.png")
    with Image.open(path) as img:
        assert img.size == (5 * 56 + 6 * 2, 2 * 56 + 3 * 2) and img.mode == "L"


def test_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="channels"):
        vis.make_grid(np.zeros((2, 28, 28, 2)))
    with pytest.raises(ValueError, match="NaN"):
        vis.make_grid(np.full((1, 28, 28, 1), np.nan))
    with pytest.raises(ValueError, match="no images"):
        vis.make_grid(np.zeros((0, 28, 28, 1)))


class _EchoDecoder:
    """A stand-in 2-D model whose 'images' are the latent points themselves."""

    latent_dim = 2

    def decode(self, z):
        z = np.asarray(z)
        return np.broadcast_to(z[:, None, :, None], (len(z), 1, 2, 1)).copy()


def test_latent_manifold_covers_the_prior_quantiles_row_by_row():
    from statistics import NormalDist

    images = vis.latent_manifold(_EchoDecoder(), n=3, low=0.1, high=0.9)
    assert images.shape == (9, 1, 2, 1)
    z = images[:, 0, :, 0].reshape(3, 3, 2)
    edge = NormalDist().inv_cdf(0.9)
    np.testing.assert_allclose(z[0, :, 0], [-edge, 0.0, edge], atol=1e-6)  # z_1 grows left to right
    np.testing.assert_allclose(z[:, 0, 1], [edge, 0.0, -edge], atol=1e-6)  # z_2 shrinks top to bottom
    bigger = _EchoDecoder()
    bigger.latent_dim = 3
    with pytest.raises(ValueError, match="latent_dim 2"):
        vis.latent_manifold(bigger)
    with pytest.raises(ValueError, match="low < high"):
        vis.latent_manifold(_EchoDecoder(), low=0.9, high=0.1)
