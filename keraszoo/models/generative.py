"""``sample`` for the variants with a prior over codes: :class:`GenerativeMixin`."""

import numbers

import keras

from keraszoo.models import checks


class GenerativeMixin:
    """``sample`` for variants with a prior ``p(z)`` (subclasses define ``sample_prior``)."""

    is_generative = True
    #: ``sample_prior`` draws from the standard normal (see ``BaseAutoEncoder.gaussian_prior``).
    gaussian_prior = True

    def _sampling_seed(self, seed):
        """The model's own generator, or a fresh one for a reproducible integer ``seed``."""
        if seed is None:
            return self.seed_generator
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):  # np.int64 too
            return keras.random.SeedGenerator(int(seed))
        return seed

    def sample_prior(self, n, seed=None):
        """``n`` draws of ``z ~ p(z) = N(0, I)``."""
        seed = self._sampling_seed(seed)
        return keras.random.normal((n, self.latent_dim), seed=seed)

    def sample(self, n, seed=None):
        """Draws ``z ~ p(z)`` and returns the decoder means, shape ``(n,) + input_shape``."""
        n = checks.check_positive_int("n", n)
        return self.decode(self.sample_prior(n, seed=seed))
