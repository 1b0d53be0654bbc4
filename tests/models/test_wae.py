"""Wasserstein autoencoder (WAE-MMD): the MMD estimator against a NumPy double loop, every loss term,
the kernel scales, batches of one, sampling, and the backends."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from keraszoo.models import WassersteinAutoEncoder
from keraszoo.models.wae import DEFAULT_KERNEL_SCALES
from keraszoo.models.wae import imq_mmd
from tests.models.model_checks import np_bce
from tests.models.model_checks import np_forward
from tests.models.model_checks import np_sigmoid
from tests.models.model_checks import terms_numpy
from tests.models.model_checks import to_numpy

PAPER_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def make(**kwargs):
    kwargs.setdefault("hidden_dims", (16,))
    return WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=3, seed=0, **kwargs)


def np_imq_mmd(q, p, c, scales):
    """The U-statistic written out as a double loop over pairs, in float64."""
    q, p = np.asarray(q, "float64"), np.asarray(p, "float64")

    def k(a, b):
        d = float(np.sum((a - b) ** 2))
        return sum(c * s / (c * s + d) for s in scales)

    n, m = len(q), len(p)
    qq = sum(k(q[i], q[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pp = sum(k(p[i], p[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    qp = sum(k(q[i], p[j]) for i in range(n) for j in range(m))
    return qq + pp - 2.0 * qp / (n * m)


def fixed_codes(n=7, m=7, d=3, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(shift, 1.3, (n, d)).astype("float32"), rng.standard_normal((m, d)).astype("float32"))


@pytest.mark.parametrize("n,m", [(7, 7), (5, 9)])
@pytest.mark.parametrize("scales", [PAPER_SCALES, (1.0,), (0.3, 4.0)])
def test_mmd_matches_a_numpy_double_loop(n, m, scales):
    q, p = fixed_codes(n, m)
    c = 2.0 * 3
    np.testing.assert_allclose(float(to_numpy(imq_mmd(q, p, c, scales))), np_imq_mmd(q, p, c, scales),
                               rtol=1e-4, atol=1e-6)


def test_default_kernel_is_the_official_seven_scales_with_c_two_latent_dim():
    assert DEFAULT_KERNEL_SCALES == PAPER_SCALES
    model = WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=5, hidden_dims=(8,))
    assert model.kernel_scales == PAPER_SCALES and model.kernel_constant == 10.0  # 2 * latent_dim * sigma_z^2
    assert model.mmd_weight == 10.0 and model.reconstruction_loss == "mse"
    q, p = fixed_codes(d=5)
    # The multi-scale kernel is the sum of the single-scale ones, so the estimate is the sum of theirs.
    summed = sum(float(to_numpy(imq_mmd(q, p, 10.0, (s,)))) for s in PAPER_SCALES)
    np.testing.assert_allclose(float(to_numpy(model.mmd(q, p))), summed, rtol=1e-5)
    np.testing.assert_allclose(float(to_numpy(model.mmd(q, p))), np_imq_mmd(q, p, 10.0, PAPER_SCALES), rtol=1e-4)
    single = WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=5, hidden_dims=(8,), kernel_scales=[1])
    np.testing.assert_allclose(float(to_numpy(single.mmd(q, p))), np_imq_mmd(q, p, 10.0, (1.0,)), rtol=1e-4)


def test_mmd_is_unbiased_near_zero_for_the_prior_and_positive_off_it():
    import tensorflow as tf

    estimate = tf.function(lambda a, b: imq_mmd(a, b, 8.0), input_signature=[tf.TensorSpec((32, 4), tf.float64)] * 2)
    rng = np.random.default_rng(1)
    same = [float(estimate(rng.standard_normal((32, 4)), rng.standard_normal((32, 4)))) for _ in range(40)]
    shifted = float(estimate(rng.normal(1.0, 1.0, (32, 4)), rng.standard_normal((32, 4))))
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(len(same)) + 1e-3, (np.mean(same), np.std(same))
    assert min(same) < 0 < max(same)  # an unbiased estimate of 0 takes both signs
    assert shifted > 10 * np.std(same), (shifted, np.std(same))


@pytest.mark.parametrize("reconstruction_loss,weight", [("mse", 10.0), ("bce", 0.5)])
def test_loss_terms_match_numpy(reconstruction_loss, weight, mnist_sample, monkeypatch):
    x = mnist_sample[0][:10]
    model = make(reconstruction_loss=reconstruction_loss, mmd_weight=weight)
    z_prior = np.random.default_rng(0).standard_normal((10, 3)).astype("float32")
    drawn = []

    def fixed_prior(self, n, seed=None):
        drawn.append(n)
        return z_prior

    monkeypatch.setattr(WassersteinAutoEncoder, "sample_prior", fixed_prior)
    terms = terms_numpy(model, x, training=True)
    assert int(drawn[0]) == 10, "one prior draw per image of the batch"
    again = terms_numpy(model, x, training=False)
    z = np_forward(model.encoder, x)
    logits = np_forward(model.decoder, z)
    if reconstruction_loss == "mse":
        rec = ((x - np_sigmoid(logits)) ** 2).reshape(10, -1).sum(1).mean()
    else:
        rec = np_bce(x, logits).mean()
    mmd = np_imq_mmd(z, z_prior, 2.0 * 3, PAPER_SCALES)
    np.testing.assert_allclose(terms["reconstruction_loss"], rec, rtol=1e-4)
    np.testing.assert_allclose(terms["mmd_loss"], mmd, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(terms["total_loss"], rec + weight * mmd, rtol=1e-4)
    np.testing.assert_allclose(terms["total_loss"], terms["reconstruction_loss"] + weight * terms["mmd_loss"], rtol=1e-6)
    assert again == terms  # no other randomness: deterministic encoder and decoder
    monkeypatch.undo()
    given = {k: float(to_numpy(v)) for k, v in model.loss_terms(x, prior_samples=z_prior).items()}
    np.testing.assert_allclose(given["mmd_loss"], mmd, rtol=1e-4, atol=1e-6)


def test_the_mmd_of_a_batch_of_one_is_zero(mnist_sample):
    import tensorflow as tf

    q, p = fixed_codes()
    for a, b in [(q[:1], p[:1]), (q[:1], p), (q, p[:1]), (q[:0], p[:0])]:
        assert float(to_numpy(imq_mmd(a, b, 6.0))) == 0.0
    dynamic = tf.function(lambda a, b: imq_mmd(a, b, 6.0),
                          input_signature=[tf.TensorSpec((None, 3), tf.float32)] * 2)  # batch size unknown when traced
    assert float(dynamic(q[:1], p[:1])) == 0.0
    np.testing.assert_allclose(float(dynamic(q, p)), np_imq_mmd(q, p, 6.0, PAPER_SCALES), rtol=1e-4)

    x = mnist_sample[0][:3]
    model = make()
    terms = terms_numpy(model, x[:1], training=True)
    assert terms["mmd_loss"] == 0.0 and terms["total_loss"] == terms["reconstruction_loss"]
    model.compile(run_eagerly=True)  # the graph-mode path with an unknown batch size is checked above
    before = [w.copy() for w in model.encoder.get_weights()]
    history = model.fit(x, epochs=1, batch_size=1, verbose=0)
    assert history.history["mmd_loss"] == [0.0]
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.encoder.get_weights()))


def test_sample_decodes_prior_draws(mnist_sample):
    model = make()
    samples = to_numpy(model.sample(5, seed=3))
    assert samples.shape == (5, 28, 28, 1) and samples.min() >= 0 and samples.max() <= 1
    z = to_numpy(keras.random.normal((5, 3), seed=keras.random.SeedGenerator(3)))
    np.testing.assert_allclose(samples, np_sigmoid(np_forward(model.decoder, z)), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(samples, to_numpy(model.sample(5, seed=3)))
    assert not np.allclose(to_numpy(model.sample(5)), to_numpy(model.sample(5)))
    np.testing.assert_array_equal(to_numpy(model.encode(mnist_sample[0][:4], sample=True)),
                                  to_numpy(model.encode(mnist_sample[0][:4])))  # deterministic encoder


def test_evaluation_reports_the_code_mmd_against_seeded_prior_draws(mnist_sample):
    model = make()
    x = mnist_sample[0][:40]
    codes = to_numpy(model.encode(x))
    metrics = model.evaluation_metrics(x, codes, batch_size=16, seed=5)
    prior = to_numpy(model.sample_prior(40, seed=5))
    np.testing.assert_allclose(metrics["code_mmd"], np_imq_mmd(codes, prior, 6.0, PAPER_SCALES), rtol=1e-4, atol=1e-6)
    assert model.evaluation_metrics(x, codes, batch_size=16, seed=5) == metrics


def test_the_penalty_pulls_the_codes_to_the_prior(mnist_sample):
    """40 compiled steps: the codes' MMD to N(0, I) falls far below the untrained encoder's.

    (Reconstruction alone drives it up instead: about 1.6 -> 4.6 in the same steps with ``mmd_weight=0``.)
    """
    x = mnist_sample[0][:256]
    keras.utils.set_random_seed(0)
    model = WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(32,), mmd_weight=100.0, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))

    def code_mmd():
        return model.evaluation_metrics(x, to_numpy(model.encode(x)), batch_size=64, seed=0)["code_mmd"]

    before = code_mmd()
    history = model.fit(x, epochs=5, batch_size=32, verbose=0)
    after = code_mmd()
    assert after < 0.2 and after < 0.2 * before, (before, after)
    assert history.history["mmd_loss"][-1] < 0.5 * history.history["mmd_loss"][0], history.history


@pytest.mark.parametrize("kwargs,match", [
    ({"mmd_weight": -1.0}, "mmd_weight"),
    ({"mmd_weight": math.nan}, "mmd_weight"),
    ({"mmd_weight": 1e300}, "float32"),
    ({"mmd_weight": "10"}, "mmd_weight"),
    ({"kernel_scales": ()}, "kernel_scales"),
    ({"kernel_scales": None}, "kernel_scales"),
    ({"kernel_scales": (1.0, 0.0)}, "kernel_scales"),
    ({"kernel_scales": (1.0, math.inf)}, "kernel_scales"),
    ({"kernel_scales": ("1",)}, "kernel_scales"),
])
def test_nonsensical_wae_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


JAX_SCRIPT = r"""
import json, numpy as np, keras
assert keras.backend.backend() == "jax"
from keraszoo.models import WassersteinAutoEncoder
from keraszoo.models.wae import imq_mmd
from keraszoo.samples import load_mnist_sample
import jax
rng = np.random.default_rng(0)
q, p = rng.normal(0.5, 1.3, (7, 3)).astype("float32"), rng.standard_normal((7, 3)).astype("float32")
jitted = jax.jit(lambda a, b: imq_mmd(a, b, 6.0))
keras.utils.set_random_seed(0)
x, _ = load_mnist_sample(193)  # 6 batches of 32 and a last batch of one
model = WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(64,), seed=0)
model.compile(optimizer=keras.optimizers.Adam(2e-3))
before = model.evaluate(x[:192], verbose=0, return_dict=True)
model.fit(x, epochs=4, batch_size=32, verbose=0)
after = model.evaluate(x[:192], verbose=0, return_dict=True)
one = {k: float(v) for k, v in model.loss_terms(x[:1], training=True).items()}
print("RESULT" + json.dumps({"q": q.tolist(), "p": p.tolist(), "mmd": float(jitted(q, p)),
                             "one": float(jitted(q[:1], p[:1])), "before": before, "after": after, "batch_of_one": one,
                             "sample": list(np.asarray(model.sample(2, seed=0)).shape)}))
"""


@pytest.mark.slow
def test_jax_backend_estimator_and_training():
    import os

    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.split("RESULT", 1)[1])
    np.testing.assert_allclose(r["mmd"], np_imq_mmd(np.array(r["q"]), np.array(r["p"]), 6.0, PAPER_SCALES), rtol=1e-4)
    assert r["one"] == 0.0 and r["batch_of_one"]["mmd_loss"] == 0.0
    assert r["after"]["total_loss"] < 0.7 * r["before"]["total_loss"], r
    assert all(np.isfinite(v) for v in r["after"].values()), r
    assert r["sample"] == [2, 28, 28, 1]


MIRRORED_SCRIPT = r"""
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from keraszoo.models import WassersteinAutoEncoder
from keraszoo.samples import load_mnist_sample
x, _ = load_mnist_sample(16)
out = {}
for replicas in (1, 2):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"][:replicas])
    with strategy.scope():
        model = WassersteinAutoEncoder(input_shape=(28, 28, 1), latent_dim=3, hidden_dims=(8,), seed=0)
        model.compile()
    history = model.fit(x, epochs=1, batch_size=2, verbose=0, shuffle=False)
    out[replicas] = {k: v[-1] for k, v in history.history.items()}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_under_mirrored_strategy_each_replica_estimates_on_its_own_batch():
    """A global batch of 2 on 2 replicas is a per-replica batch of 1: its MMD is 0; on 1 replica it is not."""
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert r["1"]["mmd_loss"] != 0.0 and r["2"]["mmd_loss"] == 0.0, r
    assert all(np.isfinite(v) for logs in r.values() for v in logs.values()), r
