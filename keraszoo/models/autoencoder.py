"""The classical autoencoder ``x_hat = f_dec(f_enc(x))``."""

from keras import ops

from keraszoo.models.base import BaseAutoEncoder
from keraszoo.models.metadata import Paper
from keraszoo.models.reference import np_forward
from keraszoo.models.reference_estimates import deterministic
from keraszoo.models.registry import keraszoo_export


@keraszoo_export("ae")
class AutoEncoder(BaseAutoEncoder):
    """Classical (undercomplete) autoencoder, dense or convolutional.

    Loss: ``L = E_batch[ sum_pixels l(x, x_hat) ]`` with ``l`` the Bernoulli
    negative log-likelihood of the decoder logits (``reconstruction_loss="bce"``)
    or the squared error (``"mse"``). Metrics: ``total_loss``,
    ``reconstruction_loss``.

    Example:
    ```python
    model = keraszoo.models.AutoEncoder(input_shape=(28, 28, 1), latent_dim=16)
    model.compile()
    model.fit(x_train, epochs=5, batch_size=128)
    codes = model.encode(x_test)
    ```
    """

    # === Metadata ===
    title = "autoencoder"
    #: the loss in one line (the README's table of variants).
    loss_summary = "`-log p(x | f_dec(f_enc(x)))` (Bernoulli, `bce`) or `Σ(x - x̂)²` (`mse`)"
    papers = (Paper("Reducing the Dimensionality of Data with Neural Networks (Hinton & Salakhutdinov, 2006)",
                    "https://doi.org/10.1126/science.1127647"),)
    presets = {"conv_ae": {"architecture": "conv"}}

    def loss_terms(self, x, training=False):
        x = self._check_inputs(x)
        logits = self.decoder(self.encoder(x, training=training), training=training)
        rec = ops.mean(self.reconstruction_nll(x, logits))
        return {"reconstruction_loss": rec, "total_loss": rec}

    def reference_terms(self, x, labels, ctx):
        """NumPy: the reconstruction through the deterministic code (the DAE's too: evaluation sees clean inputs)."""
        del labels, ctx
        rec = deterministic(self.reference_reconstruction(x, np_forward(self.decoder, np_forward(self.encoder, x))))
        return {"reconstruction_loss": rec, "total_loss": rec}
