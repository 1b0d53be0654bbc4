"""The report's statistics over seeds: the Student-t interval and when two settings differ."""

import math

import numpy as np
import pytest

from keraszoo.experiments import stats


def test_the_interval_is_the_student_t_interval_of_the_mean():
    values = [10.0, 12.0, 17.0]
    mean = 13.0
    sd = math.sqrt(((10 - 13) ** 2 + (12 - 13) ** 2 + (17 - 13) ** 2) / 2)  # ddof = 1: sqrt(13)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t_{0.975, 2}
    iv = stats.interval(values)
    assert (iv.mean, iv.n) == (mean, 3)
    assert iv.sd == pytest.approx(sd) and iv.half_width == pytest.approx(half)
    assert (iv.low, iv.high) == pytest.approx((mean - half, mean + half))
    assert iv.text() == f"13 ± {half:.2g}"


def test_one_seed_shows_the_value_and_n1_and_no_interval():
    iv = stats.interval([87.75])
    assert iv.n == 1 and iv.half_width is None and not iv.has_width
    assert iv.text() == "87.75 (n=1)"
    assert stats.interval([5.0], exact=True).text() == "5 (exact)"
    empty = stats.interval([float("nan"), None])
    assert empty.n == 0 and empty.text() == "–"
    assert stats.interval([0.8, 0.8, 0.8]).half_width == 0.0  # equal values, float noise aside


def test_paired_comparison_over_the_same_seeds():
    a = {0: 10.0, 1: 12.0, 2: 17.0}
    shifted = {k: v + 1.0 + 0.01 * k for k, v in a.items()}  # every seed one higher: seed-to-seed noise cancels
    c = stats.paired(shifted, a)
    assert c.detected and c.sign == 1 and c.method == "paired" and c.n == 3 and c.p_value < 0.05
    assert c.difference == pytest.approx(1.01)
    assert "paired over 3 seeds" in c.describe()
    # The intervals overlap widely, yet the pairing detects the shift:
    assert stats.compare(shifted, a).detected
    exact = stats.paired({k: v + 2 for k, v in a.items()}, a)  # the same difference at every seed
    assert exact.detected and exact.p_value == 0 and "every seed agrees exactly" in exact.describe()
    mixed = stats.paired({0: 11.0, 1: 11.0, 2: 18.0}, a)  # +1, -1, +1: no consistent difference
    assert not mixed.detected and mixed.sign == 0
    assert mixed.describe() == "no difference detected at 3 seeds"
    assert not stats.paired({0: 1.0}, {0: 2.0}).detected  # one common seed


def test_compare_without_common_seeds_needs_the_intervals_apart():
    low = {0: 1.0, 1: 1.1, 2: 0.9}
    high = {3: 5.0, 4: 5.2, 5: 4.9}
    near = {3: 1.05, 4: 1.2, 5: 0.95}
    assert stats.compare(high, low).method == "intervals" and stats.compare(high, low).sign == 1
    assert not stats.compare(near, low).detected
    assert not stats.compare({0: 1.0}, {0: 3.0}).detected  # n = 1: nothing can be detected


def test_an_exact_reference_differs_when_outside_the_other_interval():
    seeds = {0: 10.0, 1: 10.4, 2: 9.8}
    assert stats.compare(seeds, {0: 12.0}, b_exact=True).detected  # PCA well above the interval
    assert not stats.compare(seeds, {0: 10.1}, b_exact=True).detected  # inside it
    assert stats.compare({0: 3.0}, {0: 4.0}, True, True).detected  # two exact values


def test_random_seeds_of_one_setting_are_rarely_told_apart():
    """Same distribution, paired by seed index: the rule's false-positive rate stays near alpha."""
    rng = np.random.default_rng(0)
    found = sum(stats.compare(dict(enumerate(rng.normal(0, 1, 3))), dict(enumerate(rng.normal(0, 1, 3)))).detected
                for _ in range(400))
    assert found / 400 < 0.12
