"""VQ-VAE: quantization, every loss term, the straight-through gradient, the EMA step and the PixelCNN prior
against NumPy; sampling, saving and the JAX backend."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from keraszoo.models import VQVAE
from keraszoo.models import pixelcnn
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import terms_numpy
from tests.models.model_checks import to_numpy

GRID, D, K = (7, 7), 3, 6


def dense_networks(grid=GRID, dim=D):
    """Flatten/Dense/Reshape networks to and from a grid of code vectors (``np_forward`` runs them in NumPy)."""
    encoder = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(int(np.prod(grid)) * dim),
                                keras.layers.Reshape(grid + (dim,))], name="encoder")
    decoder = keras.Sequential([keras.Input(grid + (dim,)), keras.layers.Flatten(), keras.layers.Dense(784),
                                keras.layers.Reshape((28, 28, 1))], name="decoder")
    return encoder, decoder


def make(**kwargs):
    encoder, decoder = dense_networks()
    model = VQVAE(latent_dim=D, num_embeddings=K, encoder=encoder, decoder=decoder, seed=0, prior_layers=2,
                  prior_channels=8, **kwargs)
    return model


def spread_codebook(model, x):
    """Codes placed among the encoder's vectors, so that several are used (the initial ones are all near 0)."""
    z_e = np_forward(model.encoder, x).reshape(-1, D)
    codebook = z_e[np.random.default_rng(0).choice(len(z_e), K, replace=False)] + 0.01
    model.quantizer.codebook.assign(codebook.astype("float32"))
    if model.codebook_update == "ema":
        model.quantizer.ema_embedding_sum.assign(codebook.astype("float32"))
    return codebook


def np_nearest(z, codebook):
    d = ((z[..., None, :] - codebook) ** 2).sum(-1)
    return d.argmin(-1)


# --------------------------------------------------------------------------- quantization and losses


def test_quantization_is_the_nearest_code(mnist_sample):
    x = mnist_sample[0][:8]
    model = make()
    codebook = spread_codebook(model, x)
    z_e = np_forward(model.encoder, x).reshape((8,) + GRID + (D,))
    expected = np_nearest(z_e, codebook)
    indices = to_numpy(model.encode(x))
    assert indices.dtype == np.int32 and indices.shape == (8,) + GRID
    np.testing.assert_array_equal(indices, expected)
    assert len(np.unique(indices)) > 2
    np.testing.assert_allclose(to_numpy(model.encode(x, output="quantized")), codebook[expected], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(model.encode(x, output="continuous")), z_e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(model.code_features(x)), codebook[expected].reshape(8, -1), rtol=1e-6)


@pytest.mark.parametrize("update,beta", [("loss", 0.25), ("loss", 2.0), ("ema", 0.25)])
def test_loss_terms_match_numpy(update, beta, mnist_sample):
    x = mnist_sample[0][:10]
    model = make(codebook_update=update, commitment_weight=beta)
    codebook = spread_codebook(model, x)
    terms = terms_numpy(model, x)
    z_e = np_forward(model.encoder, x).reshape((10,) + GRID + (D,))
    z_q = codebook[np_nearest(z_e, codebook)]
    rec = np_bce(x, np_forward(model.decoder, z_q)).mean()
    vq = ((z_e - z_q) ** 2).reshape(10, -1).sum(1).mean()
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    np.testing.assert_allclose(terms["commitment_loss"], vq, rtol=1e-4)
    if update == "loss":
        np.testing.assert_allclose(terms["codebook_loss"], vq, rtol=1e-4)
        np.testing.assert_allclose(terms["total_loss"], rec + vq + beta * vq, rtol=1e-4)
        assert model.regularizer_names == ("codebook_loss", "commitment_loss")
    else:  # the EMA codebook is not optimised: no codebook term, in the sum or in the logs
        assert "codebook_loss" not in terms and model.regularizer_names == ("commitment_loss",)
        np.testing.assert_allclose(terms["total_loss"], rec + beta * vq, rtol=1e-4)


def test_perplexity_and_usage_match_numpy():
    model = make()
    indices = np.array([[0, 0, 1, 1], [1, 1, 1, 4]])
    perplexity, usage = (float(v) for v in model.quantizer.statistics(indices))
    p = np.bincount(indices.ravel(), minlength=K) / indices.size
    nonzero = p[p > 0]
    np.testing.assert_allclose(perplexity, np.exp(-(nonzero * np.log(nonzero)).sum()), rtol=1e-6)
    assert usage == pytest.approx(3 / K)
    metrics = model.evaluation_metrics(None, indices.reshape(2, 2, 2), batch_size=4, seed=0)
    assert metrics["codebook_perplexity"] == pytest.approx(perplexity, rel=1e-6)
    assert metrics["codebook_usage"] == pytest.approx(3 / K)


def test_straight_through_gradient(mnist_sample):
    """d reconstruction / d encoder = (d reconstruction / d z_q) pushed through the encoder; none reaches the codes."""
    import tensorflow as tf

    x = mnist_sample[0][:6]
    model = make()
    spread_codebook(model, x)
    encoder_vars = model.encoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, training=True)
    through_model = tape.gradient(terms["reconstruction_loss"], encoder_vars)
    assert tape.gradient(terms["reconstruction_loss"], model.quantizer.codebook) is None
    assert all(g is None for g in tape.gradient(terms["codebook_loss"], encoder_vars))
    assert tape.gradient(terms["commitment_loss"], model.quantizer.codebook) is None

    z_q = tf.constant(to_numpy(model.encode(x, output="quantized")))
    with tf.GradientTape() as tape:
        tape.watch(z_q)
        rec = tf.reduce_mean(model.reconstruction_nll(x, model.decoder(z_q)))
    d_rec_d_zq = tape.gradient(rec, z_q)
    with tf.GradientTape() as tape:
        z_e = model.encoder(x)
    expected = tape.gradient(z_e, encoder_vars, output_gradients=d_rec_d_zq)
    for got, want in zip(through_model, expected):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-5, atol=1e-7)


def test_ema_step_matches_numpy(mnist_sample):
    x = mnist_sample[0][:12]
    model = make(codebook_update="ema", ema_decay=0.9, ema_epsilon=1e-3)
    codebook = spread_codebook(model, x).astype("float64")
    codebook[-1] = 50.0  # a code far from every encoder vector: unused
    model.quantizer.codebook.assign(codebook.astype("float32"))
    model.quantizer.ema_embedding_sum.assign(codebook.astype("float32"))
    assert not model.quantizer.codebook.trainable
    size0, sum0 = np.ones(K), codebook.copy()  # one pseudo-observation of each initial code
    model.loss_terms(x, training=False)  # evaluation does not move the codes
    np.testing.assert_allclose(to_numpy(model.quantizer.codebook), codebook, rtol=1e-6)

    model.loss_terms(x, training=True)
    z = np_forward(model.encoder, x).reshape(-1, D)
    onehot = np.eye(K)[np_nearest(z, codebook)]
    size = 0.9 * size0 + 0.1 * onehot.sum(0)
    total = 0.9 * sum0 + 0.1 * onehot.T @ z
    n = size.sum()
    expected = total / ((size + 1e-3) / (n + K * 1e-3) * n)[:, None]
    np.testing.assert_allclose(to_numpy(model.quantizer.ema_cluster_size), size, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(model.quantizer.ema_embedding_sum), total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.quantizer.codebook), expected, rtol=1e-5, atol=1e-6)
    unused = onehot.sum(0) == 0
    assert unused[-1]  # an unused code stays (almost) where it was: its pseudo-count is not divided by eps
    np.testing.assert_allclose(expected[-1], 50.0 * 0.9 / ((0.9 + 1e-3) / (n + K * 1e-3) * n), rtol=1e-9)
    assert np.all(np.abs(expected[-1] - 50.0) < 0.1)


def test_dead_codes_restart_at_encoder_vectors_of_the_batch(mnist_sample):
    x = mnist_sample[0][:12]
    model = make(codebook_update="ema", ema_decay=0.9, dead_code_threshold=0.95)
    codebook = spread_codebook(model, x).astype("float64")
    codebook[-1] = 50.0  # unused: its count falls from 1 to 0.9 < 0.95 and it restarts
    model.quantizer.codebook.assign(codebook.astype("float32"))
    model.quantizer.ema_embedding_sum.assign(codebook.astype("float32"))
    model.loss_terms(x, training=True)
    z = np_forward(model.encoder, x).reshape(-1, D)
    onehot = np.eye(K)[np_nearest(z, codebook)]
    size, total = to_numpy(model.quantizer.ema_cluster_size), to_numpy(model.quantizer.ema_embedding_sum)
    live = onehot.sum(0) > 0
    assert not live[-1] and live[:-1].all()
    np.testing.assert_allclose(size[live], 0.9 + 0.1 * onehot.sum(0)[live], rtol=1e-5)  # the plain EMA step
    np.testing.assert_allclose(total[live], (0.9 * codebook + 0.1 * onehot.T @ z)[live], rtol=1e-5, atol=1e-6)
    assert size[-1] == 1.0 and np.abs(z - total[-1]).sum(1).min() < 1e-5  # moved onto one of the batch's vectors
    n = size.sum()
    np.testing.assert_allclose(to_numpy(model.quantizer.codebook)[-1], total[-1] / ((1 + 1e-5) / (n + K * 1e-5) * n),
                               rtol=1e-5)


def test_ema_codebook_moves_during_fit_and_not_by_gradients(mnist_sample):
    x = mnist_sample[0][:64]
    model = make(codebook_update="ema")
    spread_codebook(model, x)
    before = to_numpy(model.quantizer.codebook).copy()
    prior_before = [to_numpy(v).copy() for v in model.prior.weights]
    model.compile()
    logs = model.fit(x, epochs=1, batch_size=32, verbose=0).history
    for a, b in zip(model.prior.weights, prior_before):  # the prior trains apart, in fit_prior
        np.testing.assert_array_equal(to_numpy(a), b)
    assert not any(v.trainable for v in model.prior.weights)
    assert set(logs) >= {"total_loss", "reconstruction_loss", "commitment_loss", "perplexity", "usage"}
    assert "codebook_loss" not in logs
    assert not np.allclose(to_numpy(model.quantizer.codebook), before)
    assert all(v is not model.quantizer.codebook for v in model.trainable_variables)


# --------------------------------------------------------------------------- the API on a grid of codes


def test_decode_takes_indices_or_vectors_and_refuses_others(mnist_sample):
    x = mnist_sample[0][:4]
    model = make()
    spread_codebook(model, x)
    indices = to_numpy(model.encode(x))
    vectors = to_numpy(model.encode(x, output="quantized"))
    from_indices = to_numpy(model.decode(indices))
    np.testing.assert_allclose(from_indices, to_numpy(model.decode(vectors)), atol=1e-6)
    np.testing.assert_allclose(from_indices, to_numpy(model.reconstruct(x)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.decode(indices.astype("float32"))), from_indices, atol=1e-6)
    with pytest.raises(ValueError, match=r"integers 0 \.\. 5"):
        model.decode(np.full((1,) + GRID, K))
    with pytest.raises(ValueError, match=r"integers 0 \.\. 5"):
        model.decode(np.full((1,) + GRID, 0.5))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.decode(np.full((1,) + GRID + (D,), np.nan, "float32"))
    with pytest.raises(ValueError, match=r"latent codes of shape \(batch, 7, 7\).*or \(batch, 7, 7, 3\)"):
        model.decode(np.zeros((2, D), "float32"))
    with pytest.raises(ValueError, match="Unknown `output`"):
        model.encode(x, output="vectors")


def test_interpolation_quantizes_the_line_between_encoder_outputs(mnist_sample):
    x = mnist_sample[0][:2]
    model = make()
    spread_codebook(model, x)
    strip = to_numpy(model.interpolate(x[0], x[1], steps=5))
    z = np_forward(model.encoder, x).reshape((2,) + GRID + (D,))
    codebook = to_numpy(model.quantizer.codebook)
    for i, t in enumerate(np.linspace(0, 1, 5)):
        codes = np_nearest((1 - t) * z[0] + t * z[1], codebook)
        np.testing.assert_allclose(strip[i], to_numpy(model.decode(codes[None]))[0], atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    ({"architecture": "dense"}, "only the 'conv' architecture"),
    ({"num_embeddings": 1}, "at least 2"),
    ({"codebook_update": "kmeans"}, "codebook_update"),
    ({"commitment_weight": -1.0}, "commitment_weight"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"prior_kernel_size": 4}, "odd"),
    ({"dead_code_threshold": 1.0}, "needs codebook_update='ema'"),
    ({"input_shape": (30, 30, 1)}, "divisible by 4"),
])
def test_nonsensical_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VQVAE(**{"input_shape": (28, 28, 1), "latent_dim": 4, **kwargs})


def test_default_grids_and_a_network_of_the_wrong_shape():
    assert VQVAE(input_shape=(28, 28, 1), latent_dim=8, conv_filters=(8, 8), hidden_dims=()).code_shape == (7, 7)
    assert VQVAE(input_shape=(32, 32, 3), latent_dim=8, conv_filters=(8, 8), hidden_dims=(4,)).code_shape == (8, 8)
    encoder, decoder = dense_networks()
    with pytest.raises(ValueError, match=r"encoder` network must return shape \(batch, h, w, 4\)"):
        VQVAE(latent_dim=4, encoder=encoder, decoder=decoder)
    with pytest.raises(ValueError, match="decoder` network must"):
        VQVAE(latent_dim=D, encoder=encoder, decoder=dense_networks(grid=(4, 4))[1])


# --------------------------------------------------------------------------- the PixelCNN prior


def test_pixelcnn_is_causal_without_blind_spot():
    """Logits at position p change when exactly the codes before p (raster order) change: a strictly lower
    triangular dependency matrix, with every entry below the diagonal set."""
    keras.utils.set_random_seed(1)
    h, w = 4, 4
    prior = pixelcnn.build_pixelcnn((h, w), 5, channels=8, num_layers=4, kernel_size=3)
    codes = np.random.default_rng(0).integers(0, 5, (2, h, w)).astype("int32")
    base = to_numpy(prior(codes))
    depends = np.zeros((h * w, h * w), bool)  # depends[p, q]: the logits at p change with the code at q
    for q in range(h * w):
        changed = codes.copy()
        changed[:, q // w, q % w] = (changed[:, q // w, q % w] + 1) % 5
        diff = np.abs(to_numpy(prior(changed)) - base).max(axis=(0, 3))
        depends[:, q] = diff.reshape(-1) > 1e-6
    np.testing.assert_array_equal(depends, np.tri(h * w, k=-1, dtype=bool))


def test_sampling_needs_the_prior_then_draws_reproducible_codes(mnist_sample):
    x = mnist_sample[0][:64]
    model = make()
    spread_codebook(model, x)
    assert VQVAE.is_generative is True and model.is_generative is False
    with pytest.raises(NotImplementedError, match=r"not a generative model.*fit_prior"):
        model.sample(2)
    history = model.fit_prior(x, epochs=2, batch_size=16, learning_rate=3e-3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.is_generative and int(model.prior_epochs_trained) == 2
    codes = to_numpy(model.sample_prior(5, seed=3))
    assert codes.shape == (5,) + GRID and codes.dtype == np.int32 and codes.min() >= 0 and codes.max() < K
    np.testing.assert_array_equal(codes, to_numpy(model.sample_prior(5, seed=3)))
    images = to_numpy(model.sample(5, seed=3))
    assert images.shape == (5, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_allclose(images, to_numpy(model.decode(codes)), atol=1e-6)
    nll = to_numpy(model.prior_nll(to_numpy(model.encode(x[:4]))))
    assert nll.shape == (4,) and np.all(nll > 0)


def test_fit_prior_reads_datasets_of_images_and_labels(mnist_sample):
    import tensorflow as tf

    x, y = mnist_sample[0][:32], mnist_sample[1][:32]
    model = make()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit_prior(ds, epochs=1, batch_size=16, verbose=0, validation_data=x[:16])
    assert model.is_generative
    with pytest.raises(ValueError, match="images of shape"):
        model.fit_prior(x[..., 0], epochs=1)


def test_save_and_load_keep_the_ema_state_and_the_prior(mnist_sample, tmp_path):
    x = mnist_sample[0][:32]
    model = make(codebook_update="ema")
    spread_codebook(model, x)
    model.compile()
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    model.fit_prior(x, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert not [str(w.message) for w in caught if "optimizer" in str(w.message) or "compile" in str(w.message)]
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() == 2
    for name in ("codebook", "ema_cluster_size", "ema_embedding_sum"):
        np.testing.assert_array_equal(to_numpy(getattr(loaded.quantizer, name)), to_numpy(getattr(model.quantizer, name)))
    assert loaded.is_generative
    for a, b in zip(loaded.prior.weights, model.prior.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(to_numpy(loaded.encode(x)), to_numpy(model.encode(x)))
    np.testing.assert_allclose(to_numpy(loaded.sample(3, seed=1)), to_numpy(model.sample(3, seed=1)), atol=1e-6)
    fresh = VQVAE.from_config(model.get_config())
    assert not fresh.is_generative  # the prior's state lives in the weights, not the config


def test_compile_options_configure_the_second_stage(mnist_sample):
    assert VQVAE.compile_options(prior_epochs=2, prior_lr=3e-3) == {"prior_epochs": 2, "prior_lr": 3e-3}
    model = make()
    model.compile(**VQVAE.compile_options())
    assert model.fit_second_stage(mnist_sample[0][:8]) == {} and not model.is_generative
    model.compile(**VQVAE.compile_options(prior_epochs=2, prior_lr=3e-3))
    assert (model.prior_epochs, model.prior_lr) == (2, 3e-3)  # fit_second_stage runs: test_training_script_...
    with pytest.raises(ValueError, match="prior_epochs"):
        model.compile(prior_epochs=1.5)


# --------------------------------------------------------------------------- the JAX backend

JAX_SCRIPT = r"""
import json, numpy as np, keras
assert keras.backend.backend() == "jax"
from keraszoo.models import VQVAE
from keraszoo.samples import load_mnist_sample
keras.utils.set_random_seed(0)
x, _ = load_mnist_sample(96)
out = {}
for update in ("loss", "ema", "restarts"):
    m = VQVAE(latent_dim=4, num_embeddings=16, conv_filters=(8, 16), hidden_dims=(8,), prior_layers=2, prior_channels=8,
              codebook_update="loss" if update == "loss" else "ema", dead_code_threshold=1.0 if update == "restarts" else 0.0,
              seed=0)
    if update != "loss":  # codes 8..15 far from every encoder vector: never the nearest, dead from the first step
        far = np.asarray(m.quantizer.codebook).copy()
        far[8:] = 50.0
        m.quantizer.codebook.assign(far)
        m.quantizer.ema_embedding_sum.assign(far)
    before_codes = np.asarray(m.quantizer.codebook).copy()
    m.compile(optimizer=keras.optimizers.Adam(3e-3))
    first = m.evaluate(x, verbose=0, return_dict=True)["reconstruction_loss"]
    logs = m.fit(x, epochs=3, batch_size=16, verbose=0).history
    last = m.evaluate(x, verbose=0, return_dict=True)["reconstruction_loss"]
    m.fit_prior(x, epochs=1, batch_size=32, verbose=0)
    sample = np.asarray(m.sample(2, seed=1))
    out[update] = {"first": first, "last": last, "moved": float(np.abs(np.asarray(m.quantizer.codebook) - before_codes).max()),
                   "keys": sorted(logs), "sample": list(sample.shape), "same": bool(np.allclose(sample, np.asarray(m.sample(2, seed=1))))}
    if update != "loss":
        out[update]["size_sum"] = float(np.asarray(m.quantizer.ema_cluster_size).sum())
        out[update]["far"] = float(np.abs(np.asarray(m.quantizer.codebook)[8:]).max())  # still far unless restarted
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_trains_and_samples_on_the_jax_backend():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    for update, r in result.items():
        assert r["last"] < 0.8 * r["first"], (update, r)
        assert r["moved"] > 1e-4, (update, r)  # the codebook learns: by gradients, or by the EMA step on JAX too
        assert r["sample"] == [2, 28, 28, 1] and r["same"], (update, r)
    assert "codebook_loss" in result["loss"]["keys"] and "codebook_loss" not in result["ema"]["keys"]
    # random restarts inside JAX's train step: the dead codes were moved onto encoder vectors; plain EMA leaves them
    assert result["restarts"]["far"] < 25.0 and result["ema"]["far"] > 45.0, result
    # 18 EMA steps of 16 x 49 code positions each from 16 pseudo-counts: the JAX step kept the EMA updates
    np.testing.assert_allclose(result["ema"]["size_sum"], 16 * 0.99 ** 18 + 16 * 49 * (1 - 0.99 ** 18), rtol=1e-4)


# --------------------------------------------------------------------------- command line, export, training script


def test_command_line_encodes_to_indices_and_decodes_them(mnist_sample, tmp_path, capsys):
    import keraszoo
    from keraszoo.cli import main

    x = mnist_sample[0][:5]
    model = make()
    spread_codebook(model, x)
    model.compile()
    folder = keraszoo.save_pretrained(model, tmp_path / "vq")
    np.save(tmp_path / "x.npy", x)
    assert main(["encode", str(folder), str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npy")]) == 0, capsys.readouterr()
    codes = np.load(tmp_path / "c.npy")
    assert codes.dtype == np.int32 and codes.shape == (5,) + GRID
    np.testing.assert_array_equal(codes, to_numpy(model.encode(x)))
    assert main(["decode", str(folder), str(tmp_path / "c.npy"), "-o", str(tmp_path / "d.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), to_numpy(model.decode(codes)), atol=1e-5)
    np.save(tmp_path / "one.npy", to_numpy(model.encode(x[:1], output="quantized"))[0])  # one grid of vectors
    assert main(["decode", str(folder), str(tmp_path / "one.npy"), "-o", str(tmp_path / "one_d.npy")]) == 0
    np.save(tmp_path / "flat.npy", np.zeros((2, D), "float32"))
    capsys.readouterr()
    assert main(["decode", str(folder), str(tmp_path / "flat.npy"), "-o", str(tmp_path / "f.png")]) == 1
    assert "decodes codes of shape (N, 7, 7) or (N, 7, 7, 3)" in capsys.readouterr().err


@pytest.mark.slow
def test_saved_model_serves_indices_and_prior_samples(mnist_sample, tmp_path):
    import tensorflow as tf

    x = mnist_sample[0][:32]
    model = make()
    spread_codebook(model, x)
    model.fit_prior(x, epochs=1, batch_size=16, verbose=0)
    model.export(tmp_path / "served", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    codes = served.encode(x[:4]).numpy()
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, to_numpy(model.encode(x[:4])))
    np.testing.assert_allclose(served.decode(codes).numpy(), to_numpy(model.decode(codes)), atol=1e-5)
    sample = served.sample(tf.constant(3, tf.int32), tf.constant(5, tf.int64)).numpy()
    np.testing.assert_allclose(sample, to_numpy(model.sample(3, seed=5)), atol=1e-5)


@pytest.mark.slow
def test_training_script_trains_the_prior_second(tmp_path):
    from tests.conftest import SHARED_DATA
    from tests.training.helpers import train_cli

    if not (SHARED_DATA / "mnist.npz").exists():
        pytest.skip("needs mnist.npz in ../shared/data")
    out = tmp_path / "run"
    argv = ["--model", "vqvae", "--dataset", "mnist", "--data-dir", str(SHARED_DATA), "--data-source", "npz",
            "--limit", "256", "--epochs", "1", "--batch-size", "64", "--latent-dim", "8", "--conv-filters", "8,16",
            "--prior-epochs", "1", "--out", str(out)]
    assert train_cli(argv) == 0
    import keraszoo

    model = keraszoo.load(str(out))
    assert model.is_generative and int(model.prior_epochs_trained) == 1
    metadata = json.loads((out / "metadata.json").read_text())
    assert np.isfinite(metadata["metrics"]["final_train_prior_loss"])
    assert "--prior-epochs 1" in metadata["recipe"]["command"]
    assert tuple(model.sample(2, seed=0).shape) == (2, 28, 28, 1)
