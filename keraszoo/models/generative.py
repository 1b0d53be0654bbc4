"""``sample`` for the variants with a prior over codes: :class:`GenerativeMixin`."""

import keras

from keraszoo.models import checks


class GenerativeMixin:
    """``sample`` for variants with a prior ``p(z)`` (subclasses define ``sample_prior``)."""

    is_generative = True
    #: ``sample_prior`` draws from the standard normal (see ``BaseAutoEncoder.gaussian_prior``).
    gaussian_prior = True

    def _sampling_seed(self, seed):
        """The model's own generator (``None``), a given ``SeedGenerator``, or a fresh one for a reproducible
        integer ``seed`` in ``[0, 2**32)`` (NumPy's too; :func:`~keraszoo.models.checks.check_seed`)."""
        if seed is None:
            return self.seed_generator
        if isinstance(seed, keras.random.SeedGenerator):
            return seed
        return keras.random.SeedGenerator(checks.check_seed("seed", seed))

    def sample_prior(self, n, seed=None):
        """``n`` draws of ``z ~ p(z) = N(0, I)``."""
        seed = self._sampling_seed(seed)
        return keras.random.normal((n, self.latent_dim), seed=seed)

    def _check_sample_count(self, n):
        """``n`` images to sample, at most what one call returns (:data:`~keraszoo.models.checks.MAX_VALUES_PER_CALL`)."""
        n = checks.check_positive_int("n", n)
        return checks.check_output_size(
            f"{type(self).__name__}.sample(n={n})", n, self.image_shape,
            lambda most: f"sample in batches of at most {most:,}, each with its own seed "
                         f"(np.concatenate([model.sample({most}, seed=i) for i in range(k)]))")

    def sample(self, n, seed=None):
        """Draws ``z ~ p(z)`` and returns the decoder means, shape ``(n,) + input_shape``.

        ``n``: at most :data:`~keraszoo.models.checks.MAX_VALUES_PER_CALL` values in all (342,392 images of
        28x28x1); ``seed``: ``None`` (the model's generator), an integer in ``[0, 2**32)`` or a ``SeedGenerator``.
        """
        n = self._check_sample_count(n)
        seed = self._sampling_seed(seed)
        return self.decode(self.sample_prior(n, seed=seed))
