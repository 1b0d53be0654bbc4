"""Shared checks run over every registered variant (keras-hub's TestCase idea).

Each function takes a constructed model and raises an AssertionError with a
precise message when a contract of the shared API is broken.
"""

import json

import keras
import numpy as np
from keras import ops

import keraszoo.models  # noqa: F401  (registers the classes)

# The NumPy reference lives in the package (the experiment report's consistency check runs it from a wheel);
# the model tests import it from here.
from keraszoo.models.reference import np_bce  # noqa: F401
from keraszoo.models.reference import np_discretized_logistic_nll  # noqa: F401
from keraszoo.models.reference import np_forward  # noqa: F401
from keraszoo.models.reference import np_kl_std_normal  # noqa: F401
from keraszoo.models.reference import np_log_normal  # noqa: F401
from keraszoo.models.reference import np_sigmoid  # noqa: F401
from keraszoo.models.reference import np_softplus  # noqa: F401


def to_numpy(t):
    return np.asarray(ops.convert_to_numpy(t))


def check_config_roundtrip(model):
    config = model.get_config()
    json.dumps(config)  # must be JSON-serializable as is
    clone = type(model).from_config(config)
    assert clone.get_config() == config, "from_config(get_config()) changed the config"
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == f"keraszoo>{type(model).__name__}"
    rebuilt = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)), safe_mode=True)
    assert type(rebuilt) is type(model)
    assert rebuilt.get_config() == config
    assert len(rebuilt.weights) == len(model.weights), "a rebuilt model must be built with every weight"
    return clone


def check_keras_roundtrip(model, x, path):
    """``model.save(.keras)`` -> ``load_model`` gives identical deterministic outputs."""
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    kw = model.label_kwargs(model.cycled_labels(len(x)))
    np.testing.assert_allclose(to_numpy(loaded.reconstruct(x, **kw)), to_numpy(model.reconstruct(x, **kw)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(loaded.encode(x, **kw)), to_numpy(model.encode(x, **kw)), atol=1e-6)
    return loaded


def check_api_shapes(model, x):
    n = x.shape[0]
    shape = tuple(model.image_shape)
    y = model.cycled_labels(n)
    kw = model.label_kwargs(y)
    z = to_numpy(model.encode(x, **kw))
    assert z.shape == (n,) + tuple(model.code_shape)
    rec = to_numpy(model.reconstruct(x, **kw))
    assert rec.shape == (n,) + shape and rec.min() >= 0 and rec.max() <= 1
    np.testing.assert_allclose(to_numpy(model(x if y is None else (x, y))), rec, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.encode(x, **kw)), z, atol=1e-6, err_msg="encode must be deterministic")
    dec = to_numpy(model.decode(z, **kw))
    assert dec.shape == (n,) + shape

    def ends(a, b):  # a conditional model's labels of the interpolated images
        return {} if y is None else {"labels": y[a], "end_labels": y[b]}

    strip = to_numpy(model.interpolate(x[0], x[1], steps=5, **ends(0, 1)))
    assert strip.shape == (5,) + shape
    np.testing.assert_allclose(strip[0], dec[0], atol=1e-5, err_msg="interpolation must start at x1's code")
    np.testing.assert_allclose(strip[-1], dec[1], atol=1e-5, err_msg="interpolation must end at x2's code")
    batch_strip = to_numpy(model.interpolate(x[:2], x[2:4], steps=3, **ends(slice(0, 2), slice(2, 4))))
    assert batch_strip.shape == (2, 3) + shape
    if model.is_generative:
        samples = to_numpy(model.sample(6, **model.label_kwargs(model.cycled_labels(6))))
        assert samples.shape == (6,) + shape and samples.min() >= 0 and samples.max() <= 1
        kw = model.label_kwargs(1)
        np.testing.assert_allclose(to_numpy(model.sample(3, seed=7, **kw)), to_numpy(model.sample(3, seed=7, **kw)),
                                   err_msg="sample(seed=int) must be reproducible")
    else:
        try:
            model.sample(2)
        except NotImplementedError as exc:
            assert "not a generative" in str(exc)
        else:
            raise AssertionError("a non-generative model must refuse to sample")


def check_fit_step(model, x):
    """One ``fit`` step on inputs alone, and on (x, label) pairs; metrics add up.

    Runs eagerly to keep the registry-wide suite fast; the compiled (graph)
    path is exercised by every variant's learning test.
    """
    model.compile(run_eagerly=True)
    history = model.fit(x, model.cycled_labels(len(x)), epochs=1, batch_size=len(x) // 2 + 1, verbose=0)  # a short last batch
    logs = {k: v[-1] for k, v in history.history.items()}
    for name in ("loss", "total_loss", "reconstruction_loss", *model.regularizer_names):
        assert name in logs and np.isfinite(logs[name]), f"missing or non-finite metric {name}: {logs}"
    np.testing.assert_allclose(logs["loss"], logs["total_loss"], rtol=1e-6)
    labels = np.zeros((len(x),), dtype="int32")
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(len(x))
    model.fit(ds, epochs=1, verbose=0)
    return logs


def terms_numpy(model, x, training=False):
    return {k: float(ops.convert_to_numpy(v)) for k, v in model.loss_terms(x, training=training).items()}


class RecordedNoise:
    """Replaces ``losses.reparameterize`` with NumPy-drawn noise that the test can replay."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.draws = []

    def __call__(self, mean, log_var, seed):
        eps = self.rng.standard_normal(tuple(mean.shape)).astype("float32")
        self.draws.append(eps.astype("float64"))
        return mean + ops.exp(0.5 * log_var) * ops.convert_to_tensor(eps)
