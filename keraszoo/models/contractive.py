"""Contractive autoencoder (Rifai et al., 2011)."""

import keras
import numpy as np
from keras import ops

from keraszoo.models import checks
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from keraszoo.models.metadata import ReportedMetric
from keraszoo.models.numeric import map_batches
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_jacobian_frobenius_sq
from keraszoo.models.reference_estimates import Estimate
from keraszoo.models.reference_estimates import batches
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.registry import keraszoo_export

CONTRACTIVE_METHODS = ("autodiff", "closed_form", "projection")


def _jacobian_frobenius_sq_autodiff(fn, x):
    """Exact ``||d fn(x_i) / d x_i||_F^2`` per example via the backend's autodiff.

    The examples are independent, so the batch Jacobian is computed with one
    reverse pass per code unit (vectorized). The result is differentiable
    w.r.t. the network's weights (second-order autodiff), so it can be trained.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            h = fn(x)
        jac = tape.batch_jacobian(h, x)  # (batch, code, *image)
        return tf.reduce_sum(tf.reshape(tf.square(jac), (tf.shape(jac)[0], -1)), axis=-1)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def single(xi):
            return fn(xi[None])[0]

        jac = jax.vmap(jax.jacrev(single))(x)
        return jnp.sum(jnp.square(jac).reshape(jac.shape[0], -1), axis=-1)
    if backend == "torch":
        import torch

        def single(xi):
            return fn(xi[None])[0]

        jac = torch.vmap(torch.func.jacrev(single))(x)
        return torch.sum(torch.square(jac).reshape(jac.shape[0], -1), dim=-1)
    raise NotImplementedError(f"The contractive penalty needs autodiff; backend {backend!r} is not supported.")


def _vjp_norm_sq(fn, x, v):
    """``||J(x_i)^T v_i||^2`` per example (one reverse pass)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            h = fn(x)
            s = tf.reduce_sum(h * tf.stop_gradient(v))
        g = tape.gradient(s, x)
        return tf.reduce_sum(tf.reshape(tf.square(g), (tf.shape(g)[0], -1)), axis=-1)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        _, pullback = jax.vjp(fn, x)
        (g,) = pullback(jax.lax.stop_gradient(v))
        return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=-1)
    raise NotImplementedError(f"The projection estimator is not implemented for backend {backend!r}.")


@keraszoo_export("cae")
class ContractiveAutoEncoder(AutoEncoder):
    """Autoencoder with the contractive penalty ``||J_f(x)||_F^2``.

    ``J_f(x) = d f_enc(x) / d x`` is the Jacobian of the code w.r.t. the input;
    ``contractive_loss = E_batch[ ||J_f(x)||_F^2 ]`` and
    ``total_loss = reconstruction_loss + contractive_weight * contractive_loss``.
    The code uses a sigmoid, as in Rifai et al.

    Args:
        contractive_weight: lambda.
        contractive_method: how the penalty is computed.
            ``"autodiff"`` (default): exact, via the backend's batch Jacobian.
            ``"closed_form"``: exact fast path for a single sigmoid Dense
            encoder layer (``hidden_dims=()``, dense architecture):
            ``sum_j (h_j (1 - h_j))^2 sum_i W_ij^2``.
            ``"projection"``: unbiased random-projection estimate
            ``E_v ||J^T v||^2`` with ``v ~ N(0, I)`` over ``num_projections``
            draws (cheaper for large codes; noisy).
        num_projections: draws for ``"projection"``.
    """

    # === Metadata ===
    title = "contractive autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = (
        "`+ λ·‖∂f_enc(x)/∂x‖²_F`, exact by autodiff (closed form for one sigmoid layer; optional "
        "unbiased projection estimator)"
    )
    papers = (Paper("Contractive Auto-Encoders: Explicit Invariance During Feature Extraction (Rifai et al., 2011)",
                    "https://icml.cc/2011/papers/455_icmlpaper.pdf"),)
    hyperparameters = {"contractive_weight": Hyperparameter("weight lambda of the contractive penalty")}
    reported_metrics = (ReportedMetric("mean_jacobian_frobenius", "mean ‖J‖_F {value:.4f}"),)

    regularizer_names = ("contractive_loss",)
    code_activation = "sigmoid"

    def __init__(self, *args, contractive_weight=0.1, contractive_method="autodiff", num_projections=1,
                 **kwargs):
        self.contractive_weight = checks.check_non_negative("contractive_weight", contractive_weight)
        self.contractive_method = checks.check_choice("contractive_method", contractive_method,
                                                          CONTRACTIVE_METHODS)
        self.num_projections = checks.check_positive_int("num_projections", num_projections)
        super().__init__(*args, **kwargs)
        if contractive_method == "closed_form" and self._closed_form_layer() is None:
            raise ValueError(
                "contractive_method='closed_form' needs a single sigmoid Dense encoder layer "
                "(architecture='dense', hidden_dims=(), no custom encoder); use 'autodiff' otherwise.")

    def _closed_form_layer(self):
        if self._custom_encoder or self.architecture != "dense" or self.hidden_dims != ():
            return None
        dense = [layer for layer in self.encoder.layers if isinstance(layer, keras.layers.Dense)]
        if len(dense) != 1 or dense[0].activation is not keras.activations.sigmoid:
            return None
        return dense[0]

    def jacobian_frobenius_sq(self, x, method=None):
        """``||d f_enc(x_i) / d x_i||_F^2`` for every example, shape ``(batch,)``."""
        method = method or self.contractive_method
        if method == "closed_form":
            layer = self._closed_form_layer()
            if layer is None:
                raise ValueError("The closed form applies to a single sigmoid Dense encoder layer only.")
            h = self.encoder(x)
            w_sq = ops.sum(ops.square(layer.kernel), axis=0)  # (code,)
            return ops.sum(ops.square(h * (1.0 - h)) * w_sq, axis=-1)
        fn = lambda inputs: self.encoder(inputs, training=True)  # noqa: E731 (a closure, not a Lambda layer)
        if method == "autodiff":
            return _jacobian_frobenius_sq_autodiff(fn, x)
        total = 0.0
        for _ in range(self.num_projections):
            v = keras.random.normal((ops.shape(x)[0], self.latent_dim), seed=self.seed_generator)
            total = total + _vjp_norm_sq(fn, x, v)
        return total / self.num_projections

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        h = self.encoder(x, training=training)
        logits = self.decoder(h, training=training)
        rec = ops.mean(self.reconstruction_nll(x, logits))
        contractive = ops.mean(self.jacobian_frobenius_sq(x))
        # At weight 0 (the CAE's own control) the penalty is still measured, but not differentiated: its gradient is
        # zero times the Jacobian's second-order gradient, whose cost is most of a step. The weights come out the same.
        penalty = contractive if self.contractive_weight else ops.stop_gradient(contractive)
        return {
            "reconstruction_loss": rec,
            "contractive_loss": contractive,
            "total_loss": rec + self.contractive_weight * penalty,
        }

    def reference_terms(self, x, labels, ctx):
        """NumPy: the Jacobian's squared Frobenius norm by its own reverse pass, exact whatever ``contractive_method``.

        The projection estimate the run reports is ``mean_i ||J_i^T v_i||^2 / P`` summed over ``P =
        num_projections`` draws ``v ~ N(0, I)``: unbiased for the exact value, with variance ``2 ||J_i J_i^T||_F^2 / P``
        per image, so its recomputation is the exact mean with that standard error (no NumPy draws needed)."""
        del labels, ctx
        projection = self.contractive_method == "projection"
        # in chunks: the reverse pass holds latent_dim cotangents of every image
        chunks = [np_jacobian_frobenius_sq(self.encoder, x[b], gram=projection) for b in batches(len(x), 256)]
        h, jac_sq = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        rec = deterministic(self.reference_reconstruction(x, np_forward(self.decoder, h)))
        contractive = deterministic(jac_sq)
        if projection:
            variance = 2.0 * np.concatenate([c[2] for c in chunks]) / self.num_projections
            contractive = Estimate(contractive.value, float(np.sqrt(np.sum(variance)) / len(x)))
        return {"reconstruction_loss": rec, "contractive_loss": contractive,
                "total_loss": rec.plus(contractive, self.contractive_weight)}

    def evaluation_metrics(self, x, codes, *, batch_size, seed):
        """Mean ``||J_f(x)||_F`` over the first 1000 test images."""
        del codes, batch_size, seed
        sq = map_batches(lambda xb: self.jacobian_frobenius_sq(self._check_inputs(xb)), x[:1000], 64)
        return {"mean_jacobian_frobenius": float(np.mean(np.sqrt(sq)))}

    def get_config(self):
        config = super().get_config()
        config.update({
            "contractive_weight": self.contractive_weight,
            "contractive_method": self.contractive_method,
            "num_projections": self.num_projections,
        })
        return config
