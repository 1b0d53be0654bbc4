"""The report's statistics over seeds: a mean with its 95 % Student-t interval, and whether two settings differ.

A *setting* is a run's ``params`` without its ``seed``; its runs differ only in the seed. The report states an
ordering between two settings only when :func:`compare` detects it:

* **paired** (the two settings share at least two seeds, seed ``i`` against seed ``i``): a paired t-test
  (``scipy.stats.ttest_rel``) at :data:`ALPHA`, or every seed's difference the same (no spread: the t-test is
  undefined, the seeds agree exactly);
* **intervals apart**: the two 95 % intervals do not overlap (each setting with at least two seeds);
* **exact**: a deterministic reference (PCA: one run stands for every seed) outside the other's interval.

Otherwise no difference is detected at that number of seeds, whatever the means say. With one seed per setting
nothing can be detected: the report shows the value and ``n=1``, no interval.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["ALPHA", "LEVEL", "Comparison", "Interval", "compare", "interval", "paired"]

#: the intervals' confidence level and the paired test's significance level.
LEVEL = 0.95
ALPHA = 0.05
#: relative float noise below which two values are the same (a mean of equal values is not always that value).
_TOLERANCE = 1e-9


def _finite(values) -> list:
    return [float(v) for v in values if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            and math.isfinite(float(v))]


@dataclasses.dataclass(frozen=True)
class Interval:
    """``mean ± half_width`` over ``n`` seeds (``half_width`` ``None`` when ``n < 2``; ``exact``: deterministic)."""

    mean: float
    half_width: float | None
    n: int
    sd: float | None = None
    exact: bool = False

    @property
    def low(self):
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self):
        return self.mean + (self.half_width or 0.0)

    @property
    def has_width(self) -> bool:
        return self.half_width is not None

    def text(self) -> str:
        """``"87.75 ± 0.41"``; ``"87.75 (n=1)"`` for one seed; ``"87.75 (exact)"`` for a deterministic reference."""
        if self.n == 0:
            return "–"
        mean = _number(self.mean)
        if self.half_width is None:
            return f"{mean} (exact)" if self.exact else f"{mean} (n=1)"
        return f"{mean} ± {self.half_width:.2g}"

    def __str__(self):
        return self.text()


def _number(v) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"


def interval(values, level=LEVEL, exact=False) -> Interval:
    """The mean of the finite ``values`` and its Student-t interval: ``t.ppf((1 + level) / 2, n - 1) · sd / √n``
    (``sd`` with ``n - 1`` degrees of freedom). One value: the value, no interval; none: ``n == 0``, a NaN mean.
    ``exact``: the values are those of a deterministic reference (no interval: nothing varies with the seed)."""
    from scipy import stats

    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Interval(float("nan"), None, 0)
    mean = float(np.mean(xs))
    if n == 1 or exact:
        return Interval(mean, None, n, None, exact)
    sd = float(np.std(xs, ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # equal values (float noise aside)
        sd = 0.0
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n))
    return Interval(mean, half, n, sd)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: ``difference`` = mean(a) − mean(b); ``detected``: the difference holds across seeds.

    ``method``: how it was decided (``"paired"``, ``"intervals"``, ``"exact"``, ``"exact values"``, ``"none"``); ``n``: the seeds it
    rests on (the common seeds of a paired comparison, else the smaller count); ``p_value``: the paired t-test's.
    """

    difference: float
    n: int
    method: str
    detected: bool
    p_value: float | None = None

    @property
    def sign(self) -> int:
        """+1: ``a`` above ``b``; -1: below; 0: no difference detected."""
        if not self.detected:
            return 0
        return 1 if self.difference > 0 else -1

    def describe(self) -> str:
        """Why it is (or is not) detected, for a sentence: ``"paired over 3 seeds, p = 0.004"``."""
        if not self.detected:
            if self.method == "exact values":
                return "two equal exact values"
            return f"no difference detected at {self.n} seed{'s' if self.n != 1 else ''}"
        if self.method == "paired":
            p = "every seed agrees exactly" if self.p_value == 0 else f"p = {self.p_value:.2g}"
            return f"paired over {self.n} seeds, {p}"
        if self.method == "intervals":
            return f"95 % intervals apart, {self.n}+ seeds each"
        if self.method == "exact values":
            return "two exact (deterministic) values"
        return f"the exact reference lies outside the other's 95 % interval ({self.n} seeds)"


def paired(a: dict, b: dict, alpha=ALPHA) -> Comparison:
    """``a`` against ``b`` over their common seeds (``{seed: value}``): a paired t-test (``ttest_rel``).

    Detected when ``p < alpha``, or when every seed's difference is the same non-zero number (no spread: the
    t-test is undefined). Fewer than two common seeds: not detected.
    """
    from scipy import stats

    seeds = sorted(set(a) & set(b), key=str)
    pairs = [(float(a[s]), float(b[s])) for s in seeds
             if _finite([a[s]]) and _finite([b[s]])]
    n = len(pairs)
    if n == 0:
        return Comparison(float("nan"), 0, "paired", False)
    xa, xb = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    d = xa - xb
    diff = float(np.mean(d))
    if n < 2:
        return Comparison(diff, n, "paired", False)
    if np.ptp(d) <= _TOLERANCE * max(1.0, float(np.max(np.abs(np.r_[xa, xb])))):  # every seed's difference the same
        differs = abs(diff) > _TOLERANCE * max(1.0, float(np.max(np.abs(np.r_[xa, xb]))))
        return Comparison(diff, n, "paired", bool(differs), 0.0 if differs else 1.0)
    p = float(stats.ttest_rel(xa, xb).pvalue)
    return Comparison(diff, n, "paired", bool(p < alpha), p)


def compare(a: dict, b: dict, a_exact=False, b_exact=False, alpha=ALPHA, level=LEVEL) -> Comparison:
    """Whether settings ``a`` and ``b`` (``{seed: value}``) differ across seeds; see the module's rules.

    ``a_exact`` / ``b_exact``: that setting is a deterministic reference (its one value holds for every seed).
    """
    a = {k: v for k, v in a.items() if _finite([v])}
    b = {k: v for k, v in b.items() if _finite([v])}
    ia, ib = interval(a.values(), level, a_exact), interval(b.values(), level, b_exact)
    diff = ia.mean - ib.mean
    if not a or not b:
        return Comparison(float("nan"), 0, "none", False)
    if a_exact or b_exact:
        exact, other = (ia, ib) if a_exact else (ib, ia)
        if a_exact and b_exact:
            return Comparison(diff, 1, "exact values", bool(diff != 0))
        tol = _TOLERANCE * max(1.0, abs(exact.mean))
        found = other.has_width and not other.low - tol <= exact.mean <= other.high + tol
        return Comparison(diff, other.n, "exact", bool(found))
    result = paired(a, b, alpha) if len(set(a) & set(b)) >= 2 else None
    if result is not None and result.detected:
        return result
    tol = _TOLERANCE * max(1.0, abs(ia.mean), abs(ib.mean))
    if ia.has_width and ib.has_width and (ia.high + tol < ib.low or ib.high + tol < ia.low):
        return Comparison(diff, min(ia.n, ib.n), "intervals", True)
    return Comparison(diff, result.n if result is not None else min(ia.n, ib.n), "none", False)
