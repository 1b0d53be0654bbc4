"""Anomaly scores of every variant: :class:`AnomalyScoresMixin` (``model.anomaly_score``), a base of ``BaseAutoEncoder``.

``model.anomaly_score(x, method=None)`` returns one number per image, **higher = more anomalous**, as a
float64 NumPy array of shape ``(n,)``, computed batch by batch (``batch_size`` images at a time, so the
memory it takes does not grow with ``n``). The methods, each available where it makes sense
(``model.anomaly_methods``, declared by the variant's capabilities; ``model.default_anomaly_method``):

``reconstruction`` (every variant)
    The model's own reconstruction term of the deterministic reconstruction ``decode(encode(x))``
    (the VAE family's: of the posterior mean), per image: the Bernoulli NLL in nats (``"bce"``), the
    squared error ``Σ(x − x̂)²`` (``"mse"``), the Gaussian or discretized-logistic NLL in nats.
``elbo`` (``has_likelihood``)
    The negative ELBO ``−E_q[log p(x|z)] + KL``, nats, averaged over ``num_samples`` single-sample
    estimates (default :data:`DEFAULT_SAMPLES`): ``−model.elbo(x)``.
``iwae`` (``has_likelihood``)
    The negative importance-weighted bound ``−log (1/k) Σ_i p(x, z_i)/q(z_i|x)``, nats, ``k = num_samples``:
    ``−model.log_likelihood(x, num_samples=k)`` (Burda et al., 2016), an upper bound on ``−log p(x)``.
``latent`` (flat float codes: ``has_flat_codes``)
    The Mahalanobis distance of the code ``encode(x)`` from a Gaussian fit to the codes of normal images
    (their mean and a ridge-regularized covariance). It needs that fit first:
    :meth:`AnomalyScoresMixin.fit_anomaly_reference` (``keraszoo.anomaly.Detector`` does it on its normal
    images and saves it), or a ``reference=`` given to the call.
``prior`` (a learned prior over the code grid, once trained: the VQ-VAE's PixelCNN)
    ``−log p(codes)`` of the image's code grid under the prior, nats (:mod:`keraszoo.models.pixelcnn`).

The stochastic scores (``elbo``, ``iwae``) draw from the model's own generators, set to ``seed`` for the
call and put back afterwards: the same call returns the same scores.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from keraszoo.models import checks

#: Every anomaly score a variant may declare, with what it measures.
ANOMALY_METHODS = {
    "reconstruction": "the model's reconstruction term of decode(encode(x)) per image",
    "elbo": "the negative ELBO, nats (needs a likelihood)",
    "iwae": "the negative IWAE bound, nats (needs a likelihood)",
    "latent": "the Mahalanobis distance of the code from the codes of normal images (flat codes)",
    "prior": "-log p(codes) under the learned prior of the code grid, nats",
}

#: Posterior draws per image when ``num_samples`` is not given: single-sample ELBOs averaged, importance samples.
DEFAULT_SAMPLES = {"elbo": 10, "iwae": 100}

#: Images per batch when ``batch_size`` is not given.
DEFAULT_BATCH_SIZE = 256

#: The ridge added to the codes' covariance, relative to its mean variance (keeps the precision finite
#: when some code units hardly vary: a VAE's inactive units).
RIDGE = 1e-3


@dataclasses.dataclass(frozen=True)
class LatentReference:
    """The Gaussian fit to the codes of normal images that the ``latent`` score measures distances from.

    ``mean`` ``(d,)``, ``precision`` ``(d, d)`` (the inverse of the ridge-regularized covariance),
    ``count``: the images it was fit on. Plain arrays: :meth:`to_arrays` / :meth:`from_arrays` save and
    read it without pickle.
    """

    mean: np.ndarray
    precision: np.ndarray
    count: int

    @classmethod
    def fit(cls, codes, ridge=RIDGE) -> LatentReference:
        codes = np.asarray(codes, "float64").reshape(len(codes), -1)
        if len(codes) < 2:
            raise ValueError(f"The latent anomaly score fits a Gaussian to the codes of normal images: it needs at "
                             f"least 2 images; received {len(codes)}.")
        mean = codes.mean(axis=0)
        cov = np.atleast_2d(np.cov(codes, rowvar=False))
        scale = float(np.mean(np.diag(cov)))
        cov = cov + (ridge * scale if scale > 0 else ridge) * np.eye(len(mean))
        return cls(mean=mean, precision=np.linalg.inv(cov), count=int(len(codes)))

    def distance(self, codes) -> np.ndarray:
        """Mahalanobis distances of ``codes`` ``(n, d)`` from the mean, ``(n,)``."""
        centred = np.asarray(codes, "float64").reshape(len(codes), -1) - self.mean
        if centred.shape[1] != len(self.mean):
            raise ValueError(f"The latent reference was fit on {len(self.mean)}-dimensional codes; these codes have "
                             f"{centred.shape[1]} dimensions (another model?).")
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, self.precision, centred), 0.0))

    def to_arrays(self) -> dict:
        return {"mean": self.mean, "precision": self.precision, "count": np.asarray(self.count)}

    @classmethod
    def from_arrays(cls, arrays) -> LatentReference:
        mean = np.asarray(arrays["mean"], "float64")
        precision = np.asarray(arrays["precision"], "float64")
        if mean.ndim != 1 or precision.shape != (len(mean), len(mean)) or not (
                np.all(np.isfinite(mean)) and np.all(np.isfinite(precision))):
            raise ValueError(f"A latent reference holds a finite mean (d,) and precision (d, d); received shapes "
                             f"{mean.shape} and {precision.shape}.")
        return cls(mean=mean, precision=precision, count=int(np.asarray(arrays["count"])))


class AnomalyScoresMixin:
    """``anomaly_score`` and ``fit_anomaly_reference`` for a keraszoo model (see the module docstring).

    A variant declares its methods through ``anomaly_methods`` and ``default_anomaly_method``
    (:class:`~keraszoo.models.capabilities.Capabilities`) and adds a score of its own by extending
    :meth:`_anomaly_scorers` (the VQ-VAE's ``prior``).
    """

    #: the reference of the ``latent`` score, set by :meth:`fit_anomaly_reference` (not saved with the weights).
    anomaly_reference = None

    # ------------------------------------------------------------------ the API
    def anomaly_score(self, x, method=None, *, labels=None, batch_size=None, num_samples=None, seed=0,
                      reference=None):
        """One anomaly score per image of ``x``, higher = more anomalous: float64 NumPy ``(n,)``.

        Args:
            x: images ``(n,) + input_shape``, floats in [0, 1] (an array or a tensor).
            method: one of ``anomaly_methods`` (``None``: ``default_anomaly_method``); see the module docstring.
            labels: the class labels of a conditional model (``requires_labels``): one int for all or one per
                image, as its API takes them; ignored by the others.
            batch_size: images per batch (default 256): the memory taken is that of one batch.
            num_samples: posterior draws per image of ``elbo`` (default 10) and ``iwae`` (default 100).
            seed: the draws of ``elbo`` and ``iwae`` (the model's generators are set to it for the call).
            reference: a :class:`LatentReference` for ``latent`` (default: the model's, from
                :meth:`fit_anomaly_reference`).
        """
        method = self._check_anomaly_method(method)
        batch_size = checks.check_positive_int("batch_size", DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        samples = None
        if method in DEFAULT_SAMPLES:
            samples = checks.check_positive_int("num_samples", DEFAULT_SAMPLES[method] if num_samples is None
                                                else num_samples)
        if method == "latent":
            reference = self._latent_reference(reference)
        x = self._anomaly_inputs(x)
        labels = self._anomaly_labels(labels, len(x))
        scorer = self._anomaly_scorers()[method]
        parts = []
        with self._anomaly_draws(seed if method in DEFAULT_SAMPLES else None):
            for start in range(0, len(x), batch_size):
                xb = x[start:start + batch_size]
                given = self.label_kwargs(None if labels is None else labels[start:start + batch_size])
                parts.append(np.asarray(scorer(xb, given, samples=samples, reference=reference), "float64"))
        return np.concatenate(parts) if parts else np.zeros((0,), "float64")

    def fit_anomaly_reference(self, x, *, labels=None, batch_size=None):
        """Fits the ``latent`` score's Gaussian to the codes of normal images ``x``; returns the :class:`LatentReference`.

        Kept on the model (``anomaly_reference``) for later ``anomaly_score(x, "latent")`` calls; it is not
        part of the weights (``keraszoo.anomaly.Detector`` saves it with a detector).
        """
        if "latent" not in self.anomaly_methods:
            raise ValueError(f"{type(self).__name__} has no latent anomaly score: {self._anomaly_unavailable('latent')}")
        batch_size = checks.check_positive_int("batch_size", DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
        x = self._anomaly_inputs(x)
        labels = self._anomaly_labels(labels, len(x))
        codes = [self._codes_for_reference(x[i:i + batch_size], self.label_kwargs(
            None if labels is None else labels[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        self.anomaly_reference = LatentReference.fit(np.concatenate(codes) if codes else np.zeros((0, 1)))
        return self.anomaly_reference

    # ------------------------------------------------------------------ the scores
    def _anomaly_scorers(self) -> dict:
        """``{method: fn(xb, given, *, samples, reference) -> (batch,)}``; a variant adds its own."""
        return {"reconstruction": self._reconstruction_score, "elbo": self._elbo_score, "iwae": self._iwae_score,
                "latent": self._latent_score}

    def _reconstruction_score(self, xb, given, *, samples, reference):
        del samples, reference
        logits = self.decode_logits(self.encode(xb, **given), **given)
        return _numpy(self.reconstruction_nll(self._check_inputs(xb), logits))

    def _elbo_score(self, xb, given, *, samples, reference):
        del reference
        total = 0.0
        for _ in range(samples):
            total = total + _numpy(self.elbo(xb, **given)).astype("float64")
        return -total / samples

    def _iwae_score(self, xb, given, *, samples, reference):
        del reference
        return -_numpy(self.log_likelihood(xb, **given, num_samples=samples)).astype("float64")

    def _latent_score(self, xb, given, *, samples, reference):
        del samples
        return reference.distance(self._codes_for_reference(xb, given))

    def _codes_for_reference(self, xb, given):
        return _numpy(self.encode(xb, **given)).astype("float64")

    # ------------------------------------------------------------------ checks
    def _anomaly_unavailable(self, method) -> str:
        """Why ``method`` is not one of this model's anomaly scores (a sentence)."""
        name = type(self).__name__
        if method in ("elbo", "iwae"):
            return (f"{name}(reconstruction_loss={self.reconstruction_loss!r}) has no likelihood bound (elbo, iwae "
                    "need a decoder likelihood: the VAE family with 'bce', 'gaussian' or 'discretized_logistic').")
        if method == "latent":
            return f"{name}'s codes are not flat float vectors (a Gaussian of codes needs them)."
        if method == "prior":
            return f"{name} has no learned prior over its codes."
        return f"{name} does not compute it."

    def _check_anomaly_method(self, method):
        available = tuple(self.anomaly_methods)
        if method is None:
            return self.default_anomaly_method
        if not isinstance(method, str) or method not in ANOMALY_METHODS:
            import difflib

            close = difflib.get_close_matches(str(method), list(ANOMALY_METHODS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown anomaly score method {method!r}.{hint} {type(self).__name__} computes "
                             f"{', '.join(available)}.")
        if method not in available:
            raise ValueError(f"{type(self).__name__} has no {method!r} anomaly score: {self._anomaly_unavailable(method)} "
                             f"It computes {', '.join(available)}.")
        return method

    def _latent_reference(self, reference):
        reference = self.anomaly_reference if reference is None else reference
        if reference is None:
            raise ValueError(f"{type(self).__name__}.anomaly_score(method='latent') measures distances from the codes of "
                             "normal images: fit them first with model.fit_anomaly_reference(x_normal) (or use "
                             "keraszoo.anomaly.Detector, which does it), or pass reference=.")
        if not isinstance(reference, LatentReference):
            raise TypeError(f"reference must be a LatentReference; received {type(reference).__name__}.")
        return reference

    def _anomaly_inputs(self, x):
        """``x`` checked in full (shape, dtype, values), as an array or tensor that slices into batches."""
        from keraszoo.models.image_checks import check_image_array

        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            x = np.asarray(x)
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            x = x.astype("float32")
        owner = f"{type(self).__name__}.anomaly_score"
        if len(x.shape) == len(self.image_shape) + 1 and x.shape[0] == 0:
            return x
        check_image_array(x, self.image_shape, owner)
        return x

    def _anomaly_labels(self, labels, n):
        """A conditional model's labels as one int array of ``n`` (checked by its API, batch by batch); else ``None``."""
        if not self.requires_labels:
            return None
        if labels is None:
            raise ValueError(f"{type(self).__name__} is conditional: anomaly_score needs the class labels of the images "
                             f"(integers in [0, {self.num_classes}), one for all or one per image), e.g. "
                             "model.anomaly_score(x, labels=y).")
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full((n,), labels)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"{type(self).__name__}.anomaly_score received {labels.size} labels for {n} images; expected "
                             "one for all or one per image.")
        return labels

    @contextlib.contextmanager
    def _anomaly_draws(self, seed):
        """The model's random generators set to ``[seed, 0]`` for the block (``None``: left alone), then put back."""
        if seed is None:
            yield
            return
        seed = checks.check_seed("seed", seed)
        states = [v for v in self.variables if v.path.endswith("seed_generator_state")]
        saved = [np.asarray(v.numpy()) for v in states]
        try:
            for v, old in zip(states, saved):
                v.assign(np.array([seed, 0], dtype=old.dtype))
            yield
        finally:
            for v, old in zip(states, saved):
                v.assign(old)


def _numpy(tensor):
    from keraszoo.models.numeric import to_numpy

    return to_numpy(tensor)
