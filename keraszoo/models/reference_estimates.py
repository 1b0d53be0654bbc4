"""What a variant's ``reference_terms`` returns: each loss term recomputed in NumPy, as an :class:`Estimate`.

A variant's :meth:`~keraszoo.models.BaseAutoEncoder.reference_terms` recomputes, from its weights and with
the float64 forward pass of :mod:`keraszoo.models.reference`, every term it logs, averaged over the images
as ``evaluate`` averages them:

- :func:`deterministic`: a term fixed by the weights and the images (a reconstruction through a
  deterministic encoder, an analytic KL), the weighted mean of its per-unit values;
- :func:`monte_carlo`: a term the run computed with one random draw per unit (a reparameterized code,
  prior draws), from ``S`` NumPy draws per unit, with the standard error of the difference between the
  run's value and the NumPy mean, against which :mod:`keraszoo.experiments.consistency` judges it.

A unit is an image, or for a term computed once per evaluation batch (a batch's MMD, a codebook's
perplexity) a batch: :func:`batches` splits the images as the run's evaluation did, and
:func:`batch_weights` weights each batch by its share of the images (a short last batch counts less).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class Estimate:
    """A recomputed term: a value, and for a stochastic one the standard error of ``reported - value``."""

    value: float
    se: float | None = None
    samples: int = 0

    def plus(self, other, weight=1.0):
        """``self + weight * other`` of two independently drawn estimates (their standard errors add in quadrature)."""
        if self.se is None and other.se is None:
            return Estimate(self.value + weight * other.value)
        se = math.hypot(self.se or 0.0, weight * (other.se or 0.0))
        return Estimate(self.value + weight * other.value, se, max(self.samples, other.samples))


@dataclasses.dataclass
class ReferenceContext:
    """How the run evaluated its terms, and the NumPy draws to take.

    Args:
        batch_size: the run's evaluation batch size (batch-level terms depend on it).
        mc_samples: NumPy draws per unit of a stochastic term.
        rng: the ``numpy.random.Generator`` of those draws.
    """

    batch_size: int
    mc_samples: int
    rng: np.random.Generator


def deterministic(per_unit, unit_weights=None):
    """The (weighted) mean of a deterministic term's values per unit (equal weights by default)."""
    per_unit = np.asarray(per_unit, dtype="float64")
    w = np.full(len(per_unit), 1.0 / len(per_unit)) if unit_weights is None else np.asarray(unit_weights)
    return Estimate(float(np.sum(w * per_unit)))


def monte_carlo(draws, unit_weights=None):
    """``draws``: (units, S) values of a term per unit (image or batch); the run's value is one draw per unit.

    Its variance is ``sum w_u^2 var_u``; the NumPy mean of S draws has ``1/S`` of it: the difference has
    ``(1 + 1/S) sum w_u^2 var_u``.
    """
    draws = np.asarray(draws, dtype="float64")
    units, s = draws.shape
    w = np.full(units, 1.0 / units) if unit_weights is None else np.asarray(unit_weights)
    var = draws.var(axis=1, ddof=1) if s > 1 else np.zeros(units)
    return Estimate(float(np.sum(w * draws.mean(1))), float(math.sqrt((1 + 1 / s) * np.sum(w**2 * var))), s)


def batches(n, batch_size):
    """The slices of ``n`` images in evaluation batches of ``batch_size`` (the last one may be short)."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def batch_weights(parts, n):
    """Each batch's share of the ``n`` images: a batch-level term's weight in the evaluation's mean."""
    return [(b.stop - b.start) / n for b in parts]
