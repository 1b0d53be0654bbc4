"""ConditionalVAE: every term given the labels against NumPy, the labels' effect, label errors, save/load, JAX."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keraszoo.models import ConditionalVAE
from keraszoo.models import cvae as cvae_module
from keraszoo.models import losses
from tests.models.model_checks import RecordedNoise
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_kl_std_normal
from tests.models.model_checks import np_log_normal
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy
from tests.models.model_checks import to_numpy

K = 10


def make(**kwargs):
    return ConditionalVAE(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(16,), seed=0, **kwargs)


def np_forward_given(network, first, onehot):
    """A conditional dense network (``[input, condition]``: Flatten, Concatenate, Dense, Reshape) in float64 NumPy."""
    activations = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0)}
    h = np.asarray(first, "float64")
    for layer in network.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Flatten):
            h = h.reshape(len(h), -1)
        elif isinstance(layer, keras.layers.Concatenate):
            h = np.concatenate([h, onehot], axis=-1)
        elif isinstance(layer, keras.layers.Dense):
            w, b = (np.asarray(v, "float64") for v in layer.get_weights())
            h = activations[layer.activation.__name__](h @ w + b)
        elif isinstance(layer, keras.layers.Reshape):
            h = h.reshape((len(h),) + tuple(layer.target_shape))
        else:
            raise TypeError(f"np_forward_given does not handle {type(layer).__name__}")
    return h


@pytest.mark.parametrize("beta,reconstruction", [(1.0, "bce"), (4.0, "bce"), (1.0, "gaussian"), (2.0, "mse")])
def test_loss_terms_match_numpy_given_the_labels(beta, reconstruction, mnist_sample, monkeypatch):
    x, y = mnist_sample[0][:10], mnist_sample[1][:10]
    model = make(beta=beta, reconstruction_loss=reconstruction, decoder_std=0.2)
    noise = RecordedNoise()
    monkeypatch.setattr(losses, "reparameterize", noise)
    terms = terms_numpy(model, (x, y), training=True)  # the pair, as fit's steps and call take it
    onehot = np.eye(K)[y]
    params = np_forward_given(model.encoder, x, onehot)
    mu, lv = params[:, :3], params[:, 3:]
    logits = np_forward_given(model.decoder, mu + np.exp(0.5 * lv) * noise.draws[0], onehot)
    if reconstruction == "bce":
        rec = np_bce(x, logits)
    elif reconstruction == "gaussian":
        rec = (0.5 * ((x - np_sigmoid(logits)) / 0.2) ** 2 + math.log(0.2) + 0.5 * math.log(2 * math.pi)).reshape(10, -1).sum(1)
    else:  # "mse": the literal squared error, decoder_std ignored
        rec = ((x - np_sigmoid(logits)) ** 2).reshape(10, -1).sum(1)
    assert model.has_likelihood is (reconstruction != "mse") and model.has_posterior
    kl = np_kl_std_normal(mu, lv)
    np.testing.assert_allclose(terms["reconstruction_loss"], rec.mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["kl_loss"], kl.mean(), rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], rec.mean() + beta * kl.mean(), rtol=1e-4)
    keyword = {k: float(v) for k, v in model.loss_terms(x, labels=y).items()}  # the same terms, labels by keyword
    assert set(keyword) == set(terms)


def test_elbo_and_iwae_bound_match_numpy_given_the_labels(mnist_sample, monkeypatch):
    x, y = mnist_sample[0][:4], mnist_sample[1][:4]
    model = make()
    onehot = np.eye(K)[y]
    params = np_forward_given(model.encoder, x, onehot)
    mu, lv = params[:, :3], params[:, 3:]

    noise = RecordedNoise(2)
    monkeypatch.setattr(losses, "reparameterize", noise)
    elbo = to_numpy(model.elbo(x, y))
    z = mu + np.exp(0.5 * lv) * noise.draws[0]
    expected = -np_bce(x, np_forward_given(model.decoder, z, onehot)) - np_kl_std_normal(mu, lv)
    np.testing.assert_allclose(elbo, expected, rtol=1e-4)

    k = 7
    noise = RecordedNoise(3)
    monkeypatch.setattr(losses, "reparameterize", noise)
    ll = to_numpy(model.log_likelihood(x, y, num_samples=k, chunk_size=3))  # 3 chunks: 3 + 3 + 1
    eps = np.concatenate([d.reshape(4, -1, 3) for d in noise.draws], axis=1)
    z = mu[:, None] + np.exp(0.5 * lv)[:, None] * eps
    logits = np_forward_given(model.decoder, z.reshape(-1, 3), np.repeat(onehot, k, 0))
    log_w = (-np_bce(np.repeat(x, k, 0), logits).reshape(4, k)
             + np_log_normal(z, 0.0, 0.0) - np_log_normal(z, mu[:, None], lv[:, None]))
    expected = np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), 1)) + log_w.max(1)
    np.testing.assert_allclose(ll, expected, rtol=1e-4)


def test_the_labels_change_the_encoding_and_the_decoding(mnist_sample):
    x = mnist_sample[0][:5]
    model = make()
    z = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    for label in (0, 7):
        onehot = np.eye(K)[[label] * 5]
        np.testing.assert_allclose(to_numpy(model.decode(z, label)), np_sigmoid(np_forward_given(model.decoder, z, onehot)),
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(to_numpy(model.encode(x, label)), np_forward_given(model.encoder, x, onehot)[:, :3],
                                   rtol=1e-4, atol=1e-5)
    assert np.abs(to_numpy(model.decode(z, 0)) - to_numpy(model.decode(z, 7))).max() > 1e-3
    assert np.abs(to_numpy(model.encode(x, 0)) - to_numpy(model.encode(x, 7))).max() > 1e-4
    y = np.array([3, 1, 4, 1, 5])
    np.testing.assert_allclose(to_numpy(model.reconstruct(x, y)), to_numpy(model.decode(model.encode(x, y), y)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(model((x, y))), to_numpy(model.reconstruct(x, y)), atol=1e-6)
    np.testing.assert_allclose(model.predict((x, y), verbose=0), to_numpy(model.reconstruct(x, y)), atol=1e-6)
    a, b = to_numpy(model.encode(x, y, sample=True)), to_numpy(model.encode(x, y, sample=True))
    assert not np.allclose(a, b)


def test_sample_with_fixed_labels():
    model = make()
    fives = to_numpy(model.sample(6, labels=5, seed=11))
    np.testing.assert_allclose(fives, to_numpy(model.decode(model.sample_prior(6, seed=11), 5)), atol=1e-6)
    np.testing.assert_allclose(fives, to_numpy(model.sample(6, labels=[5] * 6, seed=11)), atol=1e-6)
    np.testing.assert_allclose(fives, to_numpy(model.sample(6, labels=np.int64(5), seed=11)), atol=1e-6)
    mixed = to_numpy(model.sample(4, labels=np.array([0, 1, 2, 3]), seed=2))
    z = model.sample_prior(4, seed=2)
    np.testing.assert_allclose(mixed, to_numpy(model.decode(z, [0, 1, 2, 3])), atol=1e-6)
    assert np.abs(mixed[0] - to_numpy(model.decode(z, 9))[0]).max() > 1e-3  # another class, the same z
    assert not np.allclose(to_numpy(model.sample(3, labels=1)), to_numpy(model.sample(3, labels=1)))  # the model's generator


def test_interpolation_blends_codes_and_labels(mnist_sample):
    x, y = mnist_sample[0][:2], mnist_sample[1][:2]
    model = make()
    strip = to_numpy(model.interpolate(x[0], x[1], steps=4, labels=2, end_labels=8))
    np.testing.assert_allclose(strip[0], to_numpy(model.reconstruct(x[:1], 2))[0], atol=1e-5)
    np.testing.assert_allclose(strip[-1], to_numpy(model.reconstruct(x[1:], 8))[0], atol=1e-5)
    z = to_numpy(model.encode(x[:1], 2)) * (2 / 3) + to_numpy(model.encode(x[1:], 8)) * (1 / 3)
    middle = np_sigmoid(np_forward_given(model.decoder, z, np.eye(K)[[2]] * (2 / 3) + np.eye(K)[[8]] * (1 / 3)))
    np.testing.assert_allclose(strip[1], middle[0], rtol=1e-4, atol=1e-5)
    same = to_numpy(model.interpolate(x, x[::-1], steps=3, labels=y))  # end_labels default to labels
    assert same.shape == (2, 3, 28, 28, 1)


@pytest.mark.parametrize("call", ["encode", "reconstruct", "decode", "sample", "elbo", "log_likelihood", "fit", "evaluate"])
def test_missing_labels_are_refused(call, mnist_sample):
    model = make()
    model.compile()
    x = mnist_sample[0][:4]
    z = np.zeros((4, 3), "float32")
    run = {"encode": lambda: model.encode(x), "reconstruct": lambda: model.reconstruct(x), "decode": lambda: model.decode(z),
           "sample": lambda: model.sample(4, seed=0), "elbo": lambda: model.elbo(x),
           "log_likelihood": lambda: model.log_likelihood(x, num_samples=2),
           "fit": lambda: model.fit(x, epochs=1, verbose=0), "evaluate": lambda: model.evaluate(x, verbose=0)}[call]
    with pytest.raises(ValueError, match=r"class labels|\(image, label\) pairs"):
        run()
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        model(x)


@pytest.mark.parametrize("labels,error,match", [
    (np.array([0, 1, 2]), ValueError, "3 labels for 4 images"),
    (np.array([0, 1, 2, 10]), ValueError, r"labels in \[0, 10\]"),
    (np.array([-1, 1, 2, 3]), ValueError, r"labels in \[-1, 3\]"),
    (10, ValueError, r"in \[0, 10\)"),
    (np.array([0.0, 1.0, 2.0, 3.0]), TypeError, r"dtype float64 \(cast them"),
    (2.0, TypeError, "dtype float"),
    (True, TypeError, "dtype bool"),
    (np.eye(K)[[0, 1, 2, 3]], TypeError, "one-hot"),
    (np.zeros((4, 1), "int32"), ValueError, r"shape \(n,\); received labels of shape \(4, 1\)"),
])
def test_bad_labels_raise_clear_errors(labels, error, match, mnist_sample):
    model = make()
    x = mnist_sample[0][:4]
    for call in (lambda: model.encode(x, labels), lambda: model.reconstruct(x, labels),
                 lambda: model.decode(np.zeros((4, 3), "float32"), labels), lambda: model.sample(4, labels=labels)):
        with pytest.raises(error, match=match):
            call()


def test_fit_checks_the_labels_of_arrays_and_datasets(mnist_sample):
    import tensorflow as tf

    x, y = mnist_sample[0][:16], mnist_sample[1][:16]
    model = make()
    model.compile(run_eagerly=True)  # each fit would trace a step of its own
    with pytest.raises(ValueError, match="3 labels for 16 images"):
        model.fit(x, y[:3], verbose=0)
    with pytest.raises(TypeError, match="integer class labels"):
        model.fit(x, y.astype("float32"), verbose=0)
    with pytest.raises(ValueError, match="validation_data=\\(x_val, y_val\\)"):
        model.fit(x, y, validation_data=(x,), verbose=0)
    with pytest.raises(ValueError, match=r"dataset of \(image, label\) batches"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), verbose=0)
    with pytest.raises(TypeError, match="integer class labels of shape"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y.astype("float32"))).batch(8), verbose=0)
    bad = tf.data.Dataset.from_tensor_slices((x, np.where(np.arange(16) == 12, 11, y))).batch(8)
    with pytest.raises(ValueError, match=r"ConditionalVAE.fit\(x\) expects integer class labels in \[0, 10\); "
                                         r"a batch of the dataset holds labels in \[\d+, 11\]"):
        model.fit(bad, verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["total_loss"][-1])
    assert any(np.abs(a - b).max() > 0 for a, b in zip(weights, model.get_weights()))


def test_save_load_round_trip(mnist_sample, tmp_path):
    x, y = mnist_sample[0][:6], mnist_sample[1][:6] % 3
    model = ConditionalVAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(16,), num_classes=3, beta=2.0, seed=5)
    assert model.get_config()["num_classes"] == 3
    model.compile(run_eagerly=True)
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    model.save(tmp_path / "cvae.keras")
    loaded = keras.saving.load_model(tmp_path / "cvae.keras", safe_mode=True)
    assert type(loaded) is ConditionalVAE and loaded.num_classes == 3 and loaded.beta == 2.0
    for fn in ("encode", "reconstruct"):
        np.testing.assert_allclose(to_numpy(getattr(loaded, fn)(x, y)), to_numpy(getattr(model, fn)(x, y)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(loaded.sample(4, labels=2, seed=1)), to_numpy(model.sample(4, labels=2, seed=1)),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        loaded.encode(x, 3)


def test_conv_networks_take_the_label_after_the_convolutions():
    model = ConditionalVAE(input_shape=(32, 32, 3), latent_dim=4, architecture="conv", conv_filters=(4, 8), hidden_dims=(16,))
    kinds = [type(layer).__name__ for layer in model.encoder.layers]
    assert kinds.index("Concatenate") > kinds.index("Flatten") > max(i for i, k in enumerate(kinds) if k == "Conv2D")
    assert [tuple(t.shape) for t in model.encoder.inputs] == [(None, 32, 32, 3), (None, K)]
    assert [tuple(t.shape) for t in model.decoder.inputs] == [(None, 4), (None, K)]
    assert type(model.decoder.layers[2]).__name__ == "Concatenate"  # [z, one-hot] before the first Dense


class _LabelWriter:
    """A stand-in for ``sample``: images whose pixels hold the asked label / 10."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, n, labels=None, seed=None):
        labels = self.model.check_labels(labels, n)
        self.calls.append((labels, seed))
        return np.broadcast_to((labels / 10.0)[:, None, None, None], (n, 28, 28, 1)).astype("float32")


def test_conditional_accuracy_counts_the_samples_shown_as_their_class(monkeypatch):
    model = make()
    writer = _LabelWriter(model)
    monkeypatch.setattr(model, "sample", writer)

    def classifier(images, training=False):  # reads the label back, but calls every 3 a 4
        read = np.rint(np.asarray(images)[:, 0, 0, 0] * 10).astype(int)
        return np.eye(K)[np.where(read == 3, 4, read)]

    assert cvae_module.conditional_accuracy(model, per_class=7, seed=4, batch_size=20, classifier=classifier) == 0.9
    asked = np.concatenate([labels for labels, _ in writer.calls])
    np.testing.assert_array_equal(asked, np.repeat(np.arange(K), 7))
    assert [seed for _, seed in writer.calls] == [4, 5, 6, 7]  # 70 samples in batches of 20


def test_conditional_accuracy_of_a_tiny_model_with_the_bundled_classifier():
    from keraszoo.feature_classifier import load_classifier

    model = make()
    classifier, _ = load_classifier("mnist")
    value = cvae_module.conditional_accuracy(model, "mnist", per_class=3, seed=0)
    images = to_numpy(model.sample(30, labels=np.repeat(np.arange(K), 3), seed=0))
    expected = np.mean(to_numpy(classifier(images)).argmax(-1) == np.repeat(np.arange(K), 3))
    assert value == pytest.approx(expected)
    assert cvae_module.classifier_dataset((28, 28, 1)) == "mnist"
    assert cvae_module.classifier_dataset((32, 32, 3)) == "cifar10"  # bundled since the CIFAR-10 classifier
    assert cvae_module.classifier_dataset((16, 16, 1)) is None
    small = ConditionalVAE(input_shape=(16, 16, 1), latent_dim=2, architecture="conv", conv_filters=(4, 8), hidden_dims=())
    assert small.evaluation_metrics(None, None, batch_size=8, seed=0) == {}  # no classifier for its images


def test_card_pictures_hold_one_row_per_class(monkeypatch):
    model = make()
    writer = _LabelWriter(model)
    monkeypatch.setattr(model, "sample", writer)
    (name, (images, columns)), = model.card_pictures(seed=3).items()
    assert name == "class_samples.png" and columns == 10 and images.shape == (100, 28, 28, 1)
    np.testing.assert_allclose(images[:, 0, 0, 0].reshape(10, 10), np.repeat(np.arange(K), 10).reshape(10, 10) / 10)


def test_the_training_stream_batches_the_labels():
    from keraszoo.data import EpochStream

    x = (np.arange(10)[:, None, None, None] * np.ones((1, 28, 28, 1))).astype("uint8")
    stream = EpochStream(x, batch_size=4, seed=1, labels=np.arange(10) % 3)
    for xb, yb in stream.dataset():
        np.testing.assert_array_equal(np.rint(np.asarray(xb)[:, 0, 0, 0] * 255).astype(int) % 3, np.asarray(yb))
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        EpochStream(x, batch_size=4, labels=np.arange(9))


def test_the_command_line_asks_for_labels(cli_model_dir, capsys):
    from keraszoo.cli import main

    out = cli_model_dir.parent / "threes.npy"
    assert main(["sample", str(cli_model_dir), "-n", "4", "--labels", "3", "--seed", "0", "-o", str(out)]) == 0
    assert np.load(out).shape == (4, 28, 28, 1)
    capsys.readouterr()
    assert main(["sample", str(cli_model_dir), "-n", "4", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a conditional model: give the class with --labels" in err[0]
    assert main(["sample", str(cli_model_dir), "-n", "4", "--labels", "1,2", "-o", str(out)]) == 1
    assert "--labels gives 2 labels for 4 images" in capsys.readouterr().err
    assert main(["sample", str(cli_model_dir), "-n", "2", "--labels", "12", "-o", str(out)]) == 1
    assert "labels in [12, 12]" in capsys.readouterr().err


@pytest.fixture
def cli_model_dir(tmp_path):
    import keraszoo

    folder = tmp_path / "cvae"
    keraszoo.save_pretrained(make(), folder)
    return folder


JAX_SCRIPT = r"""
import json, sys, numpy as np, keras
assert keras.backend.backend() == "jax"
from keraszoo.models import ConditionalVAE
from keraszoo.samples import load_mnist_sample
x, y = load_mnist_sample(128)
model = ConditionalVAE(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(16,), seed=0)
model.load_weights(sys.argv[1])
out = {"reconstruct": np.asarray(model.reconstruct(x[:4], y[:4])).tolist(),
       "sample": np.asarray(model.sample(3, labels=7, seed=3)).tolist()}
keras.utils.set_random_seed(0)
model.compile(optimizer=keras.optimizers.Adam(3e-3))
before = model.evaluate(x, y, verbose=0, return_dict=True)["total_loss"]
history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
out.update(before=before, after=model.evaluate(x, y, verbose=0, return_dict=True)["total_loss"],
           loss=history.history["loss"][-1], total=history.history["total_loss"][-1], iterations=int(model.optimizer.iterations))
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_backend_matches_tensorflow_and_trains_on_labels(mnist_sample, tmp_path):
    x, y = mnist_sample[0][:4], mnist_sample[1][:4]
    model = make()
    model.save_weights(tmp_path / "cvae.weights.h5")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "cvae.weights.h5")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    np.testing.assert_allclose(result["reconstruct"], to_numpy(model.reconstruct(x, y)), atol=1e-5)
    assert np.asarray(result["sample"]).shape == (3, 28, 28, 1)
    assert result["iterations"] == 12  # 4 steps an epoch: the labelled step ran
    assert result["after"] < 0.9 * result["before"], result  # 12 steps of a 16-unit network
    assert abs(result["loss"] - result["total"]) < 1e-3 * abs(result["total"])
