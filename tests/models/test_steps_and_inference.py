"""The training step (keraszoo.models.steps) and the compiled inference path (keraszoo.models.compiled)."""

import keras
import numpy as np

from keraszoo.models import VAE
from keraszoo.models import AutoEncoder
from keraszoo.models import compiled


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


def test_training_step_runs_no_extra_forward_pass():
    calls = []

    class Counting(AutoEncoder):
        def call(self, inputs, training=False):
            calls.append(training)
            return super().call(inputs, training=training)

    model = Counting(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,))
    model.compile()
    history = model.fit(_images(64), batch_size=32, epochs=1, verbose=0)
    assert calls == []  # Keras' default step would have called model(x, training=True)
    assert abs(history.history["loss"][0] - history.history["total_loss"][0]) < 1e-4


def test_compiled_encode_sees_weights_changed_after_the_first_call():
    model = VAE(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(16,), seed=0)
    x = _images(8)
    before = np.asarray(model.encode(x))
    model.compile()
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    after = np.asarray(model.encode(x))
    eager = np.asarray(model.posterior(keras.ops.convert_to_tensor(x))[0])
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, eager, rtol=1e-5, atol=1e-6)


def test_large_batches_run_in_chunks_with_the_same_result(monkeypatch):
    model = AutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), seed=0)
    x = _images(50)
    whole = np.asarray(model.reconstruct(x))
    model._inference_functions.clear()
    monkeypatch.setattr(compiled, "CHUNK_ELEMENTS", 28 * 28 * 7)  # 7 images per call
    chunked = np.asarray(model.reconstruct(x))
    assert chunked.shape == (50, 28, 28, 1)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


def test_api_methods_agree_with_the_networks_and_work_in_a_functional_graph():
    model = AutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), seed=0)
    x = _images(5)
    z = np.asarray(model.encode(x))
    np.testing.assert_allclose(z, np.asarray(model.encoder(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.decode(z)), np.asarray(keras.ops.sigmoid(model.decoder(z))),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.reconstruct(x)), np.asarray(model.decode(z)), rtol=1e-5, atol=1e-6)
    # symbolic inputs bypass the cache (they are traced into the caller's graph)
    assert compiled.is_symbolic(keras.Input((28, 28, 1)))
    assert not compiled.is_symbolic(keras.ops.convert_to_tensor(x))
