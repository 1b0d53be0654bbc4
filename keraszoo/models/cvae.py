"""Conditional variational autoencoder (Sohn, Lee & Yan, 2015): a VAE whose encoder and decoder see the class label."""

import math
import sys

import keras
import numpy as np
from keras import ops

from keraszoo import argtypes
from keraszoo.models import checks
from keraszoo.models import image_checks
from keraszoo.models import losses
from keraszoo.models.conditional_evaluation import classifier_dataset
from keraszoo.models.conditional_evaluation import conditional_accuracy
from keraszoo.models.label_checks import checked_label_dataset
from keraszoo.models.label_checks import label_errors
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import to_numpy
from keraszoo.models.reference import np_forward
from keraszoo.models.registry import keraszoo_export
from keraszoo.models.vae import VAE


@keraszoo_export("cvae")
class ConditionalVAE(VAE):
    """VAE conditioned on a class label ``y``: ``q(z|x, y)``, ``p(x|z, y)``, prior ``p(z|y) = N(0, I)``.

    The label enters both networks as a one-hot vector of ``num_classes``
    numbers (``condition_dim``): the encoder concatenates it to the flattened
    image (dense) or to the flattened convolutional features (conv: after the
    strided convolutions, before the dense layers -- stock layers only, so the
    networks load in safe mode), the decoder to the code ``z``. The prior does
    not depend on the label (Sohn et al. allow ``p(z|y) = p(z)``), so ``z`` carries what
    the label does not -- a digit's style -- and ``sample(n, labels=c)`` draws
    class ``c``. Loss per example (nats), batch mean::

        reconstruction_loss = -log p(x | z, y)          (one sample z ~ q(z|x, y))
        kl_loss             = KL(q(z|x, y) || N(0, I))   (analytic)
        total_loss          = reconstruction_loss + beta * kl_loss

    For ``beta = 1`` the total is the negative conditional ELBO, a bound on ``-log p(x|y)``.
    The reconstruction terms are the VAE's: with ``reconstruction_loss="mse"`` it is the
    literal squared error ``sum_pixels (x - x_hat)^2`` (no likelihood: no ``elbo``,
    ``log_likelihood``), with ``"gaussian"`` the Gaussian NLL of ``decoder_std`` (nats).

    Labels are integers in ``[0, num_classes)``, one per image (a length-n
    array) or one int for all, and every call takes them: ``encode(x, labels)``,
    ``decode(z, labels)``, ``reconstruct(x, labels)``, ``sample(n, labels=..., seed=...)``,
    ``interpolate(x1, x2, labels=..., end_labels=...)``, ``elbo(x, labels)``,
    ``log_likelihood(x, labels)``, ``model((x, labels))``, ``predict((x, labels))``;
    ``fit(x, y)``, ``evaluate(x, y)`` and datasets of ``(x, y)`` pairs train on them
    (``requires_labels``). Missing, non-integer, wrongly sized or out-of-range
    labels raise a ValueError/TypeError saying what was expected.

    Args:
        num_classes: number of classes (labels ``0 .. num_classes - 1``).
        **kwargs: see ``VAE``.
    """

    # === Metadata ===
    title = "conditional variational autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = ("`-log p(x|z, y) + β·KL(q(z|x, y)‖N(0, I))` (or `Σ(x - x̂)² + β·KL` for `mse`, as the VAE), the "
                    "one-hot label `y` concatenated to the encoder's flattened input and to `z`; "
                    "`sample(n, labels=c)` draws class `c`")
    papers = (Paper("Learning Structured Output Representation using Deep Conditional Generative Models "
                    "(Sohn, Lee & Yan, 2015)",
                    "https://papers.nips.cc/paper/5775-learning-structured-output-representation-using-deep-"
                    "conditional-generative-models"),)
    presets = {"conv_cvae": {"architecture": "conv"}}
    hyperparameters = {"num_classes": Hyperparameter("classes the model is conditioned on (labels 0..K-1)",
                                                     argtypes.positive_int)}
    reported_metrics = (ReportedMetric("conditional_accuracy", "conditional acc. {value:.2%}"),)
    #: the API, ``fit`` and ``evaluate`` take the class labels; the training step passes them on.
    requires_labels = True
    #: samples per class of the ``conditional_accuracy`` that ``keraszoo.evaluate`` reports.
    accuracy_samples_per_class = 200

    def __init__(self, *args, num_classes=10, **kwargs):
        self.num_classes = checks.check_positive_int("num_classes", num_classes)
        super().__init__(*args, **kwargs)

    @property
    def condition_dim(self):
        """The networks' second input: the one-hot label (see ``BaseAutoEncoder.condition_dim``)."""
        return self.num_classes

    def paper(self):
        """Sohn et al. whatever ``beta`` (``VAE.paper`` picks the beta-VAE paper for ``beta != 1``)."""
        return self.papers[0]

    # ---------------------------------------------------------------- labels
    def _condition(self, labels, x, method):
        """The one-hot condition of ``labels`` for the batch ``x`` (or ``x`` examples), checked.

        Concrete labels are checked in full (type, shape, count, range); symbolic
        ones (inside ``fit``'s traced step) by dtype and rank.
        """
        owner = f"{type(self).__name__}.{method}"
        k = self.num_classes
        count = x if isinstance(x, int) else x.shape[0]
        expected = f"integer class labels in [0, {k}): one int for all, or one per image"
        if labels is None:
            raise ValueError(f"{owner} needs the class labels ({expected}); received none. "
                             f"{type(self).__name__} is conditional: pass them, e.g. {method}(..., labels=y).")
        if isinstance(labels, (list, tuple, bool, np.bool_, float, int, np.number)):
            labels = np.asarray(labels)
        dtype = keras.backend.standardize_dtype(labels.dtype)
        if "int" not in dtype:
            hint = (" (one-hot? pass labels.argmax(-1))" if labels.ndim == 2
                    else " (cast them: labels.astype(int))" if "float" in dtype else "")
            raise TypeError(f"{owner} expects {expected}; received labels of dtype {dtype}{hint}.")
        values = image_checks.concrete_value(labels)
        ndim = labels.ndim
        if ndim == 0:
            if values is not None:
                values = np.full((count,), int(values))
            else:
                labels = ops.full((ops.shape(x)[0] if count is None else count,), labels)
        elif ndim is not None and ndim != 1:
            raise ValueError(f"{owner} expects {expected}, shape (n,); received labels of shape {tuple(labels.shape)}.")
        elif ndim == 1 and labels.shape[0] is not None and count is not None and labels.shape[0] != count:
            raise ValueError(f"{owner} received {labels.shape[0]} labels for {count} images; expected one per image "
                             f"(or one int for all).")
        if values is None:
            return ops.one_hot(ops.cast(labels, "int32"), k, dtype=self.compute_dtype)
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"{owner} expects {expected}; received labels in [{values.min()}, {values.max()}].")
        return ops.convert_to_tensor(np.eye(k, dtype="float32")[values.astype("int64")])

    def check_labels(self, labels, count, method="check_labels"):
        """``labels`` for ``count`` images as an int32 NumPy array, checked as every call checks them."""
        return np.argmax(to_numpy(self._condition(labels, int(count), method)), axis=-1).astype("int32")

    # ---------------------------------------------------------- the networks
    def _posterior_given(self, x, c, training=False):
        mean, log_var = ops.split(self.encoder([x, c], training=training), 2, axis=-1)
        return mean, log_var

    def _logits_given(self, z, c, training=False):
        return self.decoder([z, c], training=training)

    def _mean_given(self, z, c):
        return ops.sigmoid(self._logits_given(z, c))

    def _reconstruction_given(self, x, c):
        return self._mean_given(self._posterior_given(x, c)[0], c)

    def _compiled(self, name, fn, first, c):
        """``fn(first, c)`` through the compiled function ``name``: both inputs travel packed in one tensor."""
        item = tuple(first.shape[1:])
        size = math.prod(item)
        packed = ops.concatenate([ops.reshape(first, (-1, size)), ops.cast(c, first.dtype)], axis=-1)

        def unpacked(p):
            return fn(ops.reshape(p[:, :size], (-1,) + item), p[:, size:])

        return self._inference_functions(name, unpacked, packed, (size + self.num_classes,))

    # ---------------------------------------------------------------- the API
    def posterior(self, x, labels=None, training=False):
        """``(mean, log_var)`` of ``q(z|x, y)``, each ``(batch, latent_dim)``."""
        x = self._check_inputs(x)
        return self._posterior_given(x, self._condition(labels, x, "posterior"), training)

    def encode(self, x, labels=None, sample=False):
        """The posterior mean of ``q(z|x, y)`` (a draw with ``sample=True``), shape ``(batch, latent_dim)``."""
        x = self._check_inputs(x)
        c = self._condition(labels, x, "encode")
        if sample:
            mean, log_var = self._posterior_given(x, c)
            return losses.reparameterize(mean, log_var, self.seed_generator)
        return self._compiled("encode", lambda x, c: self._posterior_given(x, c)[0], x, c)

    def decode_logits(self, z, labels=None):
        z = self._check_codes(z)
        return self._compiled("decode_logits", self._logits_given, z, self._condition(labels, z, "decode_logits"))

    def decode(self, z, labels=None):
        """Images in [0, 1] (the decoder's mean) for codes ``z`` of class ``labels``."""
        z = self._check_codes(z)
        return self._compiled("decode", self._mean_given, z, self._condition(labels, z, "decode"))

    def reconstruct(self, x, labels=None):
        """``decode(encode(x, labels), labels)``: deterministic reconstructions in [0, 1]."""
        x = self._check_inputs(x)
        return self._compiled("reconstruct", self._reconstruction_given, x, self._condition(labels, x, "reconstruct"))

    def call(self, inputs, training=False):
        """Deterministic reconstruction of ``inputs = (x, labels)``."""
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            if not isinstance(inputs, (tuple, list)):
                self._check_inputs(inputs)  # the images' own problems first
            raise ValueError(f"{type(self).__name__} is called on (images, labels): model((x, labels)); received "
                             f"{type(inputs).__name__}" + (f" of {len(inputs)} items." if isinstance(inputs, (tuple, list)) else "."))
        x = self._check_inputs(inputs[0])
        c = self._condition(inputs[1], x, "call")
        return ops.sigmoid(self._logits_given(self._posterior_given(x, c, training)[0], c, training))

    def interpolate(self, x1, x2, steps=10, labels=None, end_labels=None):
        """Decodes ``steps`` points on the straight line from ``(z1, y1)`` to ``(z2, y2)``.

        ``z1 = encode(x1, labels)``, ``z2 = encode(x2, end_labels)`` (default: ``labels``); the
        one-hot labels are blended along the line too, so the ends are exactly the two
        reconstructions. Single images -> ``(steps,) + input_shape``; batches of B -> ``(B, steps) + input_shape``.
        """
        steps = checks.check_steps(steps)
        single = len(np.shape(x1)) == len(self.image_shape)
        x1, x2 = (self._check_inputs(x[None] if single else x) for x in (x1, x2))
        self._check_interpolation_size(x1.shape[0], steps)
        if tuple(x1.shape) != tuple(x2.shape):
            raise ValueError(f"`x1` and `x2` must hold the same number of images; got {tuple(x1.shape)} and {tuple(x2.shape)}.")
        c1 = self._condition(labels, x1, "interpolate")
        c2 = c1 if end_labels is None else self._condition(end_labels, x2, "interpolate")
        code = lambda x, c: self._posterior_given(x, c)[0]  # noqa: E731
        z1, z2 = self._compiled("encode", code, x1, c1), self._compiled("encode", code, x2, c2)
        t = ops.reshape(ops.linspace(0.0, 1.0, steps), (1, steps, 1))

        def line(a, b):
            return ops.reshape(ops.expand_dims(a, 1) * (1.0 - t) + ops.expand_dims(b, 1) * t, (-1, a.shape[-1]))

        images = self._compiled("decode", self._mean_given, line(z1, z2), line(c1, c2))
        images = ops.reshape(images, (-1, steps) + self.image_shape)
        return images[0] if single else images

    def sample(self, n, labels=None, seed=None):
        """``n`` images of class ``labels`` (one int for all, or one per image): ``z ~ N(0, I)`` decoded given ``y``."""
        n = self._check_sample_count(n)
        c = self._condition(labels, n, "sample")
        return self._compiled("decode", self._mean_given, self.sample_prior(n, seed=seed), c)

    # ---------------------------------------------------------------- losses
    def loss_terms(self, x, training=False, labels=None):
        """The VAE's terms given the labels; ``x`` may also be the pair ``(x, labels)`` (what ``call`` takes)."""
        if isinstance(x, (tuple, list)) and labels is None:
            x, labels = x
        x = self._check_inputs(x)
        c = self._condition(labels, x, "loss_terms")
        mean, log_var = self._posterior_given(x, c, training)
        z = losses.reparameterize(mean, log_var, self.seed_generator)
        rec = ops.mean(self.reconstruction_nll(x, self._logits_given(z, c, training)))
        kl = ops.mean(losses.kl_standard_normal(mean, log_var))
        return {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + self.beta * kl}

    def reference_terms(self, x, labels, ctx):
        """NumPy: the VAE's, the one-hot labels fed to both networks."""
        c = np.eye(self.num_classes)[np.asarray(labels, dtype="int64")]
        return self._reference_elbo_terms(x, [x, c], lambda z: np_forward(self.decoder, [z, c]), ctx)

    def _training_objective(self, x, labels=None):
        # the steps of keraszoo.models.steps pass the labels (requires_labels)
        return super()._training_objective((x, labels))

    def _update_trackers(self, terms, x):
        super()._update_trackers(terms, x[0] if isinstance(x, (tuple, list)) else x)

    def test_step(self, *args):
        # Keras' own step (state first on JAX) calls the model on its x: make x the pair (x, labels).
        *state, data = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return super().test_step(*state, ((x, y), y, sample_weight))

    def predict_step(self, *args):
        # predict((x, labels)) reaches the step as x = (x, labels); a dataset of (x, y) pairs as x and y.
        *state, data = args
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        pair = tuple(x) if y is None and isinstance(x, (tuple, list)) else (x, y)
        return super().predict_step(*state, (pair,))

    def elbo(self, x, labels=None):
        """Single-sample conditional ELBO ``E_q[log p(x|z, y)] - KL(q(z|x, y)||p(z))`` per example (nats; beta ignored)."""
        self._check_likelihood("elbo")
        x = self._check_inputs(x)
        c = self._condition(labels, x, "elbo")
        mean, log_var = self._posterior_given(x, c)
        z = losses.reparameterize(mean, log_var, self.seed_generator)
        return -(self.reconstruction_nll(x, self._logits_given(z, c)) + losses.kl_standard_normal(mean, log_var))

    def log_likelihood(self, x, labels=None, num_samples=5000, chunk_size=None):
        """Importance-weighted estimate of ``log p(x|y)`` per example (nats), as ``VAE.log_likelihood``."""
        self._check_likelihood("log_likelihood")
        num_samples = checks.check_positive_int("num_samples", num_samples)
        x = self._check_inputs(x)
        c = self._condition(labels, x, "log_likelihood")
        if chunk_size is None:
            chunk_size = max(1, min(num_samples, 2_000_000 // max(1, int(x.shape[0]) * math.prod(self.image_shape))))
        log_w = ops.concatenate([self._log_weights_given(x, c, min(chunk_size, num_samples - done))
                                 for done in range(0, num_samples, chunk_size)], axis=1)
        return losses.log_mean_exp(log_w, axis=1)

    def _log_weights_given(self, x, c, k):
        """``log p(x, z_k | y) - log q(z_k | x, y)`` for ``k`` posterior samples: shape ``(batch, k)``."""
        mean, log_var = self._posterior_given(x, c)
        mean_k, log_var_k = ops.repeat(mean, k, axis=0), ops.repeat(log_var, k, axis=0)
        z = losses.reparameterize(mean_k, log_var_k, self.seed_generator)
        log_px_z = -self.reconstruction_nll(ops.repeat(x, k, axis=0), self._logits_given(z, ops.repeat(c, k, axis=0)))
        log_w = log_px_z + losses.standard_normal_log_prob(z) - losses.gaussian_log_prob(z, mean_k, log_var_k)
        return ops.reshape(log_w, (-1, k))

    # --------------------------------------------------------------- training
    def fit(self, x=None, y=None, *args, **kwargs):
        """``VAE.fit`` on ``(image, label)`` pairs: ``fit(x, y)``, or a dataset/generator of ``(x, y)`` batches.

        Array labels are checked in full before training, a ``tf.data`` dataset's from its
        ``element_spec`` and batch by batch as it runs (range); generators' in the step (type, shape).
        """
        owner = f"{type(self).__name__}.fit"
        checked = kwargs.get("check_data", None)
        x = self._label_data(x, y, owner, "x", checked)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (tuple, list)) and 1 <= len(validation_data) <= 3:
            labels = validation_data[1] if len(validation_data) > 1 else None
            self._label_data(validation_data[0], labels, owner, "validation_data", checked)
        elif validation_data is not None:
            kwargs["validation_data"] = self._label_data(validation_data, None, owner, "validation_data", checked)
        with label_errors(self.num_classes):
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """``VAE.evaluate`` on ``(image, label)`` pairs, checked as :meth:`fit` checks them."""
        if not kwargs.get("_use_cached_eval_dataset"):
            x = self._label_data(x, y, f"{type(self).__name__}.evaluate", "x", kwargs.get("check_data"))
        with label_errors(self.num_classes):
            return super().evaluate(x, y, *args, **kwargs)

    def _label_data(self, x, y, owner, name, check_data):
        """``x`` with its labels checked (a dataset comes back with a label check appended to it)."""
        tf = sys.modules.get("tensorflow")
        values = check_data if check_data is not None else self.check_data
        if tf is not None and isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if not isinstance(spec, tuple) or len(spec) < 2 or spec[1] is None:
                raise ValueError(f"{owner}({name}) takes a dataset of (image, label) batches; its elements are {spec}. "
                                 f"{type(self).__name__} is conditional: zip the labels in, e.g. "
                                 "tf.data.Dataset.from_tensor_slices((x, y)).batch(64).")
            if "int" not in keras.backend.standardize_dtype(spec[1].dtype) or spec[1].shape.rank not in (None, 1):
                raise TypeError(f"{owner}({name}) expects integer class labels of shape (batch,); the dataset's "
                                f"labels are {spec[1]}.")
            return checked_label_dataset(x, f"{owner}({name})", self.num_classes) if values else x
        if x is None or not hasattr(x, "shape") and not isinstance(x, (list, np.ndarray)):
            return x  # a generator or PyDataset: its labels are checked in the training step
        if y is None:
            form = "validation_data=(x_val, y_val)" if name == "validation_data" else f"{owner.split('.')[-1]}(x, y)"
            raise ValueError(f"{owner}({name}) takes (image, label) pairs: {form} with integer class labels in "
                             f"[0, {self.num_classes}), one per image; received no labels.")
        count = int(x.shape[0]) if hasattr(x, "shape") else len(x)
        if not hasattr(y, "shape"):
            y = np.asarray(y)
        if len(y.shape) != 1:
            raise ValueError(f"{owner}({name}) expects labels of shape ({count},); received shape {tuple(y.shape)}.")
        if values:
            self._condition(y, count, owner.split(".")[-1])
        return x

    # ------------------------------------------------------------ evaluation
    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """``conditional_accuracy`` (see :func:`conditional_accuracy`) with the bundled classifier of the model's
        image shape (MNIST's for 28x28x1); none without one."""
        del x, codes
        dataset = classifier_dataset(self.image_shape, self.num_classes)
        if dataset is None:
            return {}
        return {"conditional_accuracy": conditional_accuracy(self, dataset, per_class=self.accuracy_samples_per_class,
                                                             seed=seed, batch_size=max(batch_size, 500))}

    def card_pictures(self, seed=0, per_class=10):
        """``{file: (images, columns)}`` for the model card: row ``c`` of the grid holds samples of class ``c``."""
        labels = np.repeat(np.arange(self.num_classes), per_class)
        return {"class_samples.png": (to_numpy(self.sample(len(labels), labels=labels, seed=seed)), per_class)}

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config

