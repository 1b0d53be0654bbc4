"""The references keraszoo is measured against, written the way their authors write them.

* :func:`keras_io_vae`: the model of the keras.io example "Variational AutoEncoder"
  (https://keras.io/examples/generative/vae/, Apache 2.0), layer for layer: a
  functional encoder ending in a ``Sampling`` layer, a functional decoder, a custom
  ``train_step`` with ``tf.GradientTape`` and three ``Mean`` trackers. It is the
  reference a Keras user knows, and the fastest plain way to train a conv VAE in
  Keras, so a framework with its own loss bookkeeping must not lose to it.
* :class:`TapeTrainer`: a hand-written ``GradientTape`` step over a keraszoo
  variant's own networks and loss (``loss_terms``); :class:`AdversarialTapeTrainer`
  does the adversarial autoencoder's three phases by hand. Same networks, same
  maths, same optimizer: what is left between ``fit`` and this loop is keraszoo's
  training machinery (``compute_loss``, the per-term trackers, Keras' default step).
* pythae's VAE (PyTorch) is in :mod:`benchmarks.process_side`: it trains in a process of its
  own, since PyTorch and TensorFlow cannot share one.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers
from keras import ops

from keraszoo.models import AdversarialAutoEncoder
from keraszoo.models import losses

# --------------------------------------------------------------------------- keras.io


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit (keras.io)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class KerasIoVAE(keras.Model):
    """The keras.io example's ``VAE``: encoder, decoder, a tape ``train_step``, three trackers."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def keras_io_vae(latent_dim=2):
    """The keras.io example's VAE for 28x28x1 digits, compiled as there: ``Adam()``."""
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    vae = KerasIoVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


# --------------------------------------------------------------------------- tape loops


class TapeTrainer(keras.Model):
    """``fit`` drives this hand-written step over ``inner`` (a second instance of the variant).

    ``train_step`` takes ``inner.loss_terms(x, training=True)`` under a
    ``tf.GradientTape``, applies the gradients of ``total_loss`` with its own
    optimizer and keeps one ``Mean`` per loss term, like the keras.io example: the
    loop a Keras user writes by hand around a model's loss.
    """

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.trackers = [keras.metrics.Mean(name=tracker.name) for tracker in inner.loss_trackers]
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers)

    def compile(self, optimizer=None, **kwargs):
        """Adam(1e-3), the optimizer keraszoo's ``compile()`` defaults to."""
        super().compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=1e-3), **kwargs)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        # A conditional variant's step is given the labels (fit(x, y)), as its own train_step is.
        labels = self.inner.label_kwargs(y)
        variables = self.inner.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.inner.loss_terms(x, training=True, **labels)
        grads = tape.gradient(terms["total_loss"], variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._track(terms)

    def _track(self, terms):
        for tracker in self.trackers:
            tracker.update_state(terms[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.trackers}


class AdversarialTapeTrainer(TapeTrainer):
    """The adversarial autoencoder's three phases (Makhzani et al.), each its own tape and optimizer.

    1. reconstruction (encoder + decoder, Adam 1e-3); 2. discriminator: prior samples
    against codes (Adam 2e-4, beta_1 0.5); 3. regularization: the encoder fools the
    discriminator (a second Adam 2e-4, beta_1 0.5) -- the optimizers keraszoo's
    ``AdversarialAutoEncoder.compile()`` defaults to.
    """

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        m = self.inner
        self.discriminator_optimizer = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
        self.generator_optimizer = keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
        # Built here: an optimizer's slots cannot be created on a later trace of the step.
        self.discriminator_optimizer.build(m.discriminator.trainable_variables)
        self.generator_optimizer.build(m.encoder.trainable_variables)

    def train_step(self, data):
        m = self.inner
        x = data[0] if isinstance(data, tuple) else data
        ae_vars = m.encoder.trainable_variables + m.decoder.trainable_variables
        with tf.GradientTape() as tape:
            z = m.encoder(x, training=True)
            rec = ops.mean(m.reconstruction_nll(x, m.decoder(z, training=True)))
        self.optimizer.apply_gradients(zip(tape.gradient(rec, ae_vars), ae_vars))

        z_prior = m.sample_prior(tf.shape(x)[0])
        disc_vars = m.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            z = tf.stop_gradient(m.encoder(x, training=True))
            d_real = m.discriminator(z_prior, training=True)
            d_fake = m.discriminator(z, training=True)
            disc = 0.5 * (ops.mean(losses.sigmoid_cross_entropy(1.0, d_real))
                          + ops.mean(losses.sigmoid_cross_entropy(0.0, d_fake)))
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(disc, disc_vars), disc_vars))

        enc_vars = m.encoder.trainable_variables
        with tf.GradientTape() as tape:
            gen = ops.mean(losses.sigmoid_cross_entropy(1.0, m.discriminator(m.encoder(x, training=True), training=True)))
            weighted = m.adversarial_weight * gen
        self.generator_optimizer.apply_gradients(zip(tape.gradient(weighted, enc_vars), enc_vars))
        return self._track({"reconstruction_loss": rec, "generator_loss": gen, "discriminator_loss": disc,
                            "total_loss": rec + m.adversarial_weight * gen})


def tape_trainer(inner):
    """The compiled hand-written loop for the variant instance ``inner``."""
    trainer = AdversarialTapeTrainer(inner) if isinstance(inner, AdversarialAutoEncoder) else TapeTrainer(inner)
    trainer.compile()
    return trainer
