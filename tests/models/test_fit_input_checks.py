"""``fit`` and ``evaluate`` check their data as ``encode`` checks its input (keraszoo.models.checked_data.TrainingData).

Arrays are checked in full before training, ``tf.data`` datasets by ``element_spec`` and then batch by
batch in the pipeline, generators and ``PyDataset`` batch by batch; a failed check raises a
ValueError before the first weight update (or, for a bad batch later in a stream, where it appears).
The bad-input catalogue (tests/bad_inputs/cases_fit.py) holds the messages; here: the behaviour
around them (nothing trained, labels ignored, the switch, no retracing, the same batches, JAX,
tf.distribute).
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keraszoo import data
from keraszoo.models import AutoEncoder
from keraszoo.models import checked_data
from keraszoo.models import image_checks

SHAPE = (8, 8, 1)


def make_model(cls=AutoEncoder, **kwargs):
    model = cls(input_shape=SHAPE, latent_dim=2, hidden_dims=(4,), seed=0, **kwargs)
    model.compile()
    return model


def images(n=8, seed=0):
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def weights(model):
    return [np.array(w) for w in model.get_weights()]


def assert_untrained(model, before):
    # The weights, not ``optimizer.iterations``: in a TF graph the counter's increment does not wait
    # for the batch, so a step whose input fails can count one iteration without updating anything.
    for a, b in zip(weights(model), before):
        np.testing.assert_array_equal(a, b)


class Steps(keras.callbacks.Callback):
    """Counts the training steps that completed."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1


# --------------------------------------------------------------------------- nothing is trained on bad data


def _bad(kind):
    x = images()
    if kind == "nan":
        x[5, 1, 2, 0] = np.nan
    elif kind == "inf":
        x[5, 1, 2, 0] = -np.inf
    elif kind == "255":
        x = x * 255
    return x


@pytest.fixture(scope="module")
def shared_model():
    """One model for the module (each new model traces its train step again: seconds each on 2 cores).

    Tests that need untouched weights compare them with a snapshot taken when they start.
    """
    return make_model()


@pytest.mark.parametrize("kind, match", [
    ("nan", r"received NaN values \(1 NaN, the first in x\[5\]\)"),
    ("inf", r"received Inf values \(1 Inf, the first in x\[5\]\)"),
    ("255", r"expects pixel values in \[0, 1\]; received values in \[[\d.e-]+, 2[\d.]+\] \(the first image outside: x\[0\]"),
])
@pytest.mark.parametrize("source", ["array", "tensor", "dataset", "generator", "validation"])
def test_bad_values_stop_fit_before_the_first_step(shared_model, kind, match, source):
    model = shared_model
    before = weights(model)
    x = _bad(kind)
    if source == "tensor":
        args = (tf.constant(x),)
    elif source == "dataset":
        args = (tf.data.Dataset.from_tensor_slices(x).batch(8),)
        match = r"in a batch of the dataset" if kind != "255" else r"a batch of the dataset holds values in \[[\d.e-]+, 2[\d.]+\]"
    elif source == "generator":
        args = ((b for b in (x,)),)
        match = match.replace(r"x\[5\]", r"image 5 of batch 1 of the generator").replace(
            r"x\[0\]", r"image 0 of batch 1 of the generator")
    elif source == "validation":
        args = (images(),)
        match = match.replace(r"x\[", r"x_val\[")
    else:
        args = (x,)
    kwargs = {"validation_data": (x,)} if source == "validation" else {}
    steps = Steps()
    with pytest.raises(ValueError, match=match):
        model.fit(*args, epochs=1, batch_size=None if source in ("dataset", "generator") else 4, verbose=0,
                  callbacks=[steps], **kwargs)
    assert steps.count == 0
    assert_untrained(model, before)


def test_a_bad_batch_later_in_a_stream_stops_training_where_it_appears(shared_model):
    x = images(12)
    x[7, 0, 0, 0] = np.nan  # batch 3 of 4 (images 6..8)
    for stream in (tf.data.Dataset.from_tensor_slices(x).batch(3), (x[i:i + 3] for i in range(0, 12, 3))):
        steps = Steps()
        with pytest.raises(ValueError, match="NaN"):
            shared_model.fit(stream, epochs=1, verbose=0, callbacks=[steps])
        assert steps.count == 2  # the two good batches, not the bad one nor the fourth


def test_the_array_check_reads_slices_and_finds_the_first_bad_image(monkeypatch):
    monkeypatch.setattr(image_checks, "CHECK_SLICE_VALUES", 3 * 64)  # 3 images per slice
    x = images(10)
    x[7, 0, 0, 0], x[8, 0, 0, 0], x[2, 4, 4, 0] = np.nan, np.nan, np.inf
    with pytest.raises(ValueError, match=r"received NaN and Inf values \(2 NaN, 1 Inf, the first in x\[2\]\)"):
        image_checks.check_image_array(x, SHAPE, "AE.fit(x)")
    y = images(10)
    y[8] *= 255
    with pytest.raises(ValueError, match=r"received values in \[[\d.e-]+, 2[\d.]+\] \(the first image outside: x\[8\]"):
        image_checks.check_image_array(y, SHAPE, "AE.fit(x)")
    image_checks.check_image_array(images(10), SHAPE, "AE.fit(x)")  # good data in several slices


def test_tensorflow_min_and_max_propagate_nan_as_the_dataset_check_assumes():
    rng = np.random.default_rng(0)
    for n in (1, 7, 1000, 100_003):
        x = rng.random(n, dtype=np.float32)
        x[rng.integers(n)] = np.nan
        assert np.isnan(tf.reduce_min(x).numpy()) and np.isnan(tf.reduce_max(x).numpy()), n


# --------------------------------------------------------------------------- what is accepted


def test_labels_are_ignored_and_lists_of_images_accepted(shared_model):
    x = images()
    labels = np.arange(8)
    model, steps = shared_model, Steps()
    model.fit(x, labels, epochs=1, batch_size=4, verbose=0, callbacks=[steps])
    model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(4), epochs=1, verbose=0, callbacks=[steps])
    model.fit(list(x), epochs=1, batch_size=4, verbose=0, callbacks=[steps])
    model.fit(x, epochs=1, batch_size=4, verbose=0, validation_data=(x, labels), callbacks=[steps])
    assert steps.count == 8


def test_generators_may_yield_images_alone_and_pydatasets_are_checked(shared_model):
    x = images()

    class Batches(keras.utils.PyDataset):
        def __init__(self, values):
            super().__init__()
            self.values = values
            self.epochs_ended = 0

        def __len__(self):
            return 2

        def __getitem__(self, index):
            return self.values[4 * index:4 * index + 4]

        def on_epoch_end(self):
            self.epochs_ended += 1

    model, steps = shared_model, Steps()
    model.fit((x[i:i + 4] for i in (0, 4)), epochs=1, verbose=0, callbacks=[steps])  # Keras alone refuses bare arrays
    batches, unchecked = Batches(x), Batches(x)
    model.fit(batches, epochs=2, verbose=0, callbacks=[steps])
    model.fit(unchecked, epochs=2, verbose=0, check_data=False)
    assert steps.count == 6 and batches.epochs_ended == unchecked.epochs_ended >= 2  # the epoch hooks are passed on
    bad = x.copy()
    bad[6, 0, 0, 0] = 3.0
    with pytest.raises(ValueError, match=r"the first image outside: image 2 of PyDataset\[1\]"):
        model.fit(Batches(bad), epochs=1, verbose=0)


def test_keraszoo_pipelines_get_their_spec_checked_and_other_datasets_a_check_map_once(shared_model):
    from keraszoo.data.pipelines import VALUES_CHECKED

    assert VALUES_CHECKED == checked_data._VALUES_CHECKED
    x = images()
    checks = checked_data.TrainingData(SHAPE, "AutoEncoder.fit")
    stream = data.EpochStream((x * 255).astype(np.uint8), batch_size=4, seed=0)
    built = [data.from_numpy(x, batch_size=4), data.from_numpy(x, np.arange(8), batch_size=4), stream.dataset(),
             stream.partial_epoch(0, 1), stream.dataset().with_options(tf.data.Options())]
    for ds in built:  # their arrays were checked when they were built: passed on as they are
        assert checks.inputs(ds) is ds
    with pytest.raises(ValueError, match=r"received shape \(None, 8, 8, 3\) \(the dataset's element_spec\)"):
        checks.inputs(data.from_numpy(np.repeat(x, 3, axis=-1), batch_size=4))  # their spec still is
    plain = tf.data.Dataset.from_tensor_slices(x).batch(4)
    mapped = data.from_numpy(x, batch_size=4).map(lambda b: b * 255)  # a keraszoo pipeline, changed: checked again
    assert checks.inputs(plain) is not plain and checks.inputs(mapped) is not mapped
    assert checks.inputs(plain) is checks.inputs(plain)  # one check map per dataset: fit(ds) again traces nothing new
    model = shared_model
    model.fit(stream.dataset(), epochs=2, verbose=0, callbacks=[stream.callback()])
    model.fit(built[0], epochs=1, verbose=0, validation_data=plain)
    with pytest.raises(ValueError, match=r"a batch of the dataset holds values in \[[\d.e-]+, 2[\d.]+\]"):
        model.evaluate(mapped, verbose=0)


def test_evaluate_is_checked_and_fit_does_not_check_its_validation_data_every_epoch(shared_model, monkeypatch):
    calls = []
    original = image_checks.check_image_array
    monkeypatch.setattr(image_checks, "check_image_array", lambda *a, **k: (calls.append(k.get("name")), original(*a, **k)))
    model = shared_model
    x = images()
    model.fit(x, epochs=2, batch_size=8, verbose=0, validation_data=(x,))
    assert calls == ["x", "x_val"]
    with pytest.raises(ValueError, match=r"AutoEncoder\.evaluate\(x\) expects images of shape \(batch, 8, 8, 1\)"):
        model.evaluate(np.zeros((2, 8, 8, 3), np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer or None; received 0"):
        model.evaluate(x, steps=0, verbose=0)


# --------------------------------------------------------------------------- the switch


def test_check_data_false_and_the_model_attribute_switch_the_checks_off(shared_model):
    x = images() * 255
    model, steps = shared_model, Steps()
    model.fit(x, epochs=1, batch_size=4, verbose=0, check_data=False, callbacks=[steps])  # trains, as Keras would
    model.check_data = False
    try:
        model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[steps])
        model.evaluate(tf.data.Dataset.from_tensor_slices(x).batch(4), verbose=0)
        with pytest.raises(ValueError, match="pixel values"):
            model.fit(x, epochs=1, batch_size=4, verbose=0, check_data=True)
    finally:
        del model.check_data  # back to the class's True
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):  # argument checks stay on
        model.fit(images(), epochs=1, batch_size=0, verbose=0, check_data=False)
    assert steps.count == 4


# --------------------------------------------------------------------------- the checks cost nothing in the graph


def test_checks_neither_retrace_the_train_step_nor_change_what_is_trained_on():
    """The checked and unchecked runs trace the train step as often, and train on exactly the same batches.

    (A peek of the dataset's first batch before fit would have advanced its seeded reshuffle.)
    """
    x = images(16)
    results = {}
    for checked in (True, False):
        keras.utils.set_random_seed(1)
        model = make_model()
        traces = []
        step = model.train_step

        def counting_step(*args, step=step, traces=traces):
            traces.append(1)  # runs when tf.function traces the step, not when it executes
            return step(*args)

        model.train_step = counting_step
        ds = tf.data.Dataset.from_tensor_slices(x).shuffle(16, seed=3, reshuffle_each_iteration=True).batch(4)
        for _ in range(3):
            model.fit(ds, epochs=2, verbose=0, check_data=checked)
        model.fit(x, epochs=1, batch_size=4, shuffle=False, verbose=0, check_data=checked)
        results[checked] = (len(traces), weights(model))
    assert results[True][0] == results[False][0]
    for a, b in zip(results[True][1], results[False][1]):
        np.testing.assert_array_equal(a, b)
    checked = checked_data.TrainingData(SHAPE, "AutoEncoder.fit").inputs(ds)
    assert checked.element_spec == ds.element_spec and int(checked.cardinality()) == int(ds.cardinality())


# --------------------------------------------------------------------------- other backends and strategies


JAX_SCRIPT = r"""
import json, numpy as np, keras
assert keras.backend.backend() == "jax"
import tensorflow as tf
from keraszoo.models import AdversarialAutoEncoder, AutoEncoder
x = np.random.default_rng(0).random((8, 8, 8, 1)).astype("float32")
out = {}
for cls in (AutoEncoder, AdversarialAutoEncoder):
    model = cls(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), seed=0)
    model.compile()
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
    model.fit((b for b in (x[:4], x[4:])), epochs=1, verbose=0)
    errors, kept = {}, {}
    for name, make in (("array", lambda: x * 255), ("dataset", lambda: tf.data.Dataset.from_tensor_slices(x * 255).batch(4)),
                       ("generator", lambda: (b for b in (x[:4], x[4:] * 255)))):
        before = [np.array(w) for w in model.get_weights()]
        try:
            model.fit(make(), epochs=1, verbose=0)
            errors[name] = None
        except ValueError as err:
            errors[name] = str(err)
        # Keras' JAX loop detaches the variables; a failed first batch must not lose them.
        kept[name] = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.fit(x, epochs=1, batch_size=4, verbose=0)  # still trains
    out[cls.__name__] = {"errors": errors, "kept": kept, "iterations": int(model.optimizer.iterations)}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow  # a JAX process that trains two models: about 25 s on 2 cores
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_checks_on_the_jax_backend():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    for name, r in result.items():
        errors = r["errors"]
        assert errors["array"].startswith(f"{name}.fit(x) expects pixel values in [0, 1]; received values in"), errors
        assert errors["dataset"].startswith(f"{name}.fit(x) expects pixel values in [0, 1]; a batch of the dataset"), errors
        assert "image 0 of batch 2 of the generator; divide uint8-range pixels by 255" in errors["generator"], errors
        assert r["kept"] == {"array": True, "dataset": True, "generator": True}, r
        assert r["iterations"] == 6, r  # 2 + 2 + 2 good steps; Keras reads a generator's first 2 batches before training


MIRRORED_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keraszoo.models import VAE
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), seed=0)
    model.compile()
x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
bad = x.copy()
bad[9, 0, 0, 0] = np.nan
errors, steps = {}, []
count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
for name, data in (("array", bad), ("dataset", tf.data.Dataset.from_tensor_slices(bad).batch(4))):
    try:
        model.fit(data, epochs=1, verbose=0, callbacks=[count])
        errors[name] = None
    except ValueError as err:
        errors[name] = str(err)
print("RESULT" + json.dumps({"errors": errors, "steps": len(steps)}))
"""


@pytest.mark.slow
def test_checks_under_mirrored_strategy():
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["errors"]["array"].startswith("VAE.fit(x) received NaN values (1 NaN, the first in x[9])")
    assert result["errors"]["dataset"].startswith("VAE.fit(x) received NaN values in a batch of the dataset")
    assert result["steps"] == 2  # the two good batches before the one with the NaN
