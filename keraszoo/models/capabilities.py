"""What a variant can do, declared with its defaults: :class:`Capabilities`, a base of ``BaseAutoEncoder``.

A variant overrides what it has (the ``ConditionalVAE`` ``requires_labels``, the ``VQVAE``'s ``code_shape`` is a
grid of int32 indices, the VAE family ``has_posterior`` and, with a decoder likelihood, ``has_likelihood`` ...).
Code outside ``keraszoo/models/`` reads these and never probes a model with ``getattr(model, "...", default)`` or tests its variant's name.
"""

import collections
import inspect

import numpy as np

from keraszoo.models import networks

#: What ``reconstruction_loss="mse"`` measures, in every variant (and PCA's and the linear autoencoder's error).
SQUARED_ERROR = "squared error Σ(x − x̂)²"

#: One loss term's definition in one configuration: the ``argument`` that chooses it, its ``value`` and what the term
#: then measures (``meaning``).
TermDefinition = collections.namedtuple("TermDefinition", "term argument value meaning")


class Capabilities:
    """The capabilities of a keraszoo model and their defaults (an autoencoder with flat float codes)."""

    #: the API and ``fit`` take class labels beside the images (``labels=``; ``fit(x, y)``).
    requires_labels = False
    #: number of classes a conditional variant takes (labels ``0 .. num_classes - 1``); 0: none.
    num_classes = 0
    #: the architectures the variant can build (``architecture=``).
    architectures = networks.ARCHITECTURES
    #: dtype of one example's code as ``encode`` returns it (the VQ-VAE's: int32 codebook indices).
    code_dtype = "float32"
    #: ``(h, w, latent_dim)`` code vectors behind a grid of indices (the VQ-VAE's); ``None``: flat codes.
    quantized_shape = None
    #: the encoder is a stochastic posterior ``q(z|x)``: ``encode(x)`` is its mean, ``encode(x, sample=True)`` a draw
    #: (the VAE family, whatever its reconstruction term; the active units are counted for it).
    has_posterior = False
    #: the model trains a second stage after ``fit`` (:meth:`fit_second_stage`; the VQ-VAE's prior).
    has_second_stage = False
    #: ``sample`` draws codes from a Gaussian prior centred at 0 (a 2-D code's latent manifold, a grid of the
    #: standard normal's quantiles, covers it; not the AAE's mixture prior, nor a learned one).
    gaussian_prior = False
    #: ``{term: (argument, {value: what the term measures})}``: a loss term whose definition one of the variant's
    #: arguments chooses (the sparse autoencoder's ``sparsity_loss``: a KL divergence or an L1 norm, by
    #: ``sparsity``). Reports never set two definitions of a term, or of the ``total_loss`` that adds it, on one axis.
    term_definitions = {}

    @classmethod
    def term_definition(cls, term, config):
        """What ``term`` measures for a model of the arguments ``config`` (a dict; the constructor's default where
        an argument is left out): a tuple of :data:`TermDefinition` of the terms :attr:`term_definitions` declares
        (``total_loss``: all of them, it adds them); ``()`` for a term whose definition no argument chooses."""
        names = list(cls.term_definitions) if term == "total_loss" else [term] if term in cls.term_definitions else []
        found = []
        for name in names:
            argument, meanings = cls.term_definitions[name]
            value = config[argument] if argument in config else cls._constructor_default(argument)
            found.append(TermDefinition(name, argument, value, meanings.get(value, f"{name} at {argument}={value}")))
        return tuple(found)

    @classmethod
    def _constructor_default(cls, argument):
        """The default of a constructor argument (:func:`~keraszoo.models.metadata.constructor_parameters`: a subclass
        that passes it on through ``**kwargs`` keeps its parent's)."""
        from keraszoo.models.metadata import constructor_parameters

        parameter = constructor_parameters(cls).get(argument)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
        raise TypeError(f"{cls.__name__} declares a term definition chosen by {argument!r}, which no constructor of "
                        "its takes with a default.")

    @property
    def code_shape(self):
        """Shape of one example's code as ``encode`` returns it: ``(latent_dim,)`` unless a variant says otherwise."""
        return (self.latent_dim,)

    @property
    def has_flat_codes(self):
        """Whether codes are ``(latent_dim,)`` float vectors (k-NN, probes, scatters and latent arithmetic apply)."""
        return tuple(self.code_shape) == (self.latent_dim,) and self.code_dtype == "float32"

    @property
    def has_likelihood(self):
        """Whether the model has a likelihood bound in nats: ``elbo(x)`` and ``log_likelihood(x, num_samples)``.

        The VAE family's, when its reconstruction term is a decoder's negative log-likelihood (``"bce"``,
        ``"gaussian"``, ``"discretized_logistic"``); not with the literal squared error ``"mse"``, which is no
        normalized log-density. An instance's property: it depends on the configuration.
        """
        return False

    @property
    def discrete_likelihood(self):
        """Whether the decoder's likelihood is a probability of the 8-bit image (bits/dim apply)."""
        return False

    @property
    def anomaly_methods(self):
        """The anomaly scores ``anomaly_score`` computes for this model, in order (see
        :mod:`keraszoo.models.anomaly_scores`): ``reconstruction`` always, ``elbo`` and ``iwae`` with a likelihood,
        ``latent`` with flat float codes; a variant with a learned prior over its codes adds ``prior`` (the VQ-VAE,
        once its prior is trained). An instance's property: it depends on the configuration."""
        methods = ["reconstruction"]
        if self.has_likelihood:
            methods += ["elbo", "iwae"]
        if self.has_flat_codes:
            methods.append("latent")
        return tuple(methods)

    @property
    def default_anomaly_method(self):
        """The anomaly score ``anomaly_score(x)`` computes when no method is named: ``reconstruction`` by default
        (the VAE family with a likelihood: ``elbo``; the IWAE: ``iwae``, the bound it trains)."""
        return "reconstruction"

    def label_kwargs(self, labels):
        """``{"labels": labels}`` for a model that ``requires_labels``, ``{}`` for the others: the one way to pass labels."""
        return {"labels": labels} if self.requires_labels else {}

    def cycled_labels(self, n):
        """Labels ``0, 1, .., K-1, 0, ..`` for ``n`` examples of a conditional model (every class equally often); else ``None``."""
        return np.arange(int(n)) % self.num_classes if self.requires_labels else None

    def code_features(self, x, labels=None):
        """Flat float features of the codes of ``x`` for k-NN and linear probes: the codes themselves by default."""
        return self.encode(x, **self.label_kwargs(labels))

    def fit_second_stage(self, x, *, batch_size=128, verbose="auto"):
        """Trains the variant's second stage after ``fit`` (``has_second_stage``); nothing by default."""
        del x, batch_size, verbose
        return None

    def card_pictures(self, seed=0):
        """``{file name: (images, columns)}``: pictures of the variant's own for its model card; none by default."""
        del seed
        return {}

    def reconstruction_description(self):
        """What the reconstruction term measures, with its unit, for tables and axes."""
        return {"bce": "Bernoulli NLL, nats", "mse": SQUARED_ERROR}.get(self.reconstruction_loss,
                                                                                  self.reconstruction_loss)
