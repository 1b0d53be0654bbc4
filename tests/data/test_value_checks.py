"""The data layer's value check of arrays (keraszoo.data.images.value_range): slice by slice, NaN and Inf included."""

import math

import numpy as np
import pytest

from keraszoo import data
from keraszoo.data import images


@pytest.fixture
def small_slices(monkeypatch):
    monkeypatch.setattr(images, "RANGE_SLICE_VALUES", 2 * 16)  # two 4x4 images per slice


def test_value_range_reads_every_slice(small_slices):
    x = np.full((7, 4, 4, 1), 0.5, np.float32)
    x[6, 3, 3, 0] = 0.75
    x[1, 0, 0, 0] = 0.25
    assert images.value_range(x) == (0.25, 0.75)
    x[5, 2, 2, 0] = np.nan  # in the third slice
    lo, hi = images.value_range(x)
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_arrays_with_nan_or_inf_in_a_late_slice_are_refused(small_slices, bad):
    x = np.full((9, 4, 4, 1), 0.5, np.float32)
    x[8, 1, 1, 0] = bad
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        data.prepare_images(x)
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        data.EpochStream(x, batch_size=4)


def test_out_of_range_floats_keep_their_message(small_slices):
    x = np.full((9, 4, 4, 1), 0.5, np.float32)
    x[7] = 200.0
    with pytest.raises(ValueError, match=r"Float x must be scaled to \[0, 1\], found 0\.5\.\.200\. It looks like 0\.\.255"):
        data.from_numpy(x)
    assert data.prepare_images(x / 255.0).dtype == np.float32
