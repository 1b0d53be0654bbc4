"""The models are written with keras.ops: every variant trains on the JAX backend too.

The AAE's three phases run in keraszoo's stateless JAX step (keraszoo.models.steps).

Runs in a subprocess because the Keras backend is fixed at import time. The default suite trains
three variants that between them take every step path (the base train_step, a sampled one, the AAE's
three optimizers); the slow suite trains all the others.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")

SCRIPT = r"""
import json, numpy as np, keras
assert keras.backend.backend() == "jax"
import sys
import keraszoo.models as M
from keraszoo.samples import load_mnist_sample
wanted = sys.argv[1].split(",")
keras.utils.set_random_seed(0)  # initial weights and fit's shuffling: the same run every time
x, y = load_mnist_sample(192)
out = {}
for name, cls in sorted(M.list_variants().items()):
    if name not in wanted:
        continue
    model = cls(input_shape=(28, 28, 1), latent_dim=6, hidden_dims=(64,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    labels = y if cls.requires_labels else None  # a conditional variant trains on (x, y)
    phases = model.training_phases()  # several: an adversarial game, whose total is not minimised jointly
    term = "reconstruction_loss" if len(phases) > 1 else "total_loss"
    before = model.evaluate(x, labels, verbose=0, return_dict=True)[term]
    history = model.fit(x, labels, epochs=4, batch_size=32, verbose=0)
    after = model.evaluate(x, labels, verbose=0, return_dict=True)[term]
    logs = {k: v[-1] for k, v in history.history.items()}
    out[name] = {"before": before, "after": after, "loss": logs["loss"], "total": logs["total_loss"],
                 "logs": logs, "sample": list(np.asarray(model.sample(2, **model.label_kwargs(0))).shape) if model.is_generative else None}
    if len(phases) > 1:  # fit wrote every phase optimizer's state back (24 steps each)
        out[name]["iterations"] = [int(p.optimizer.iterations) for p in phases]
print("RESULT" + json.dumps(out))
"""


#: the default suite's variants: the base step (ae), a sampled step (vae), the AAE's three-phase step.
DEFAULT = ("aae", "ae", "vae")


def _others():
    from keraszoo.models import list_variants

    return tuple(sorted(set(list_variants()) - set(DEFAULT)))


def _train_on_jax(names):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(names)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert set(result) == set(names)
    for name, r in result.items():
        assert r["after"] < 0.7 * r["before"], (name, r)
        assert abs(r["loss"] - r["total"]) < 1e-3 * abs(r["total"]), (name, r)
        if r["sample"] is not None:
            assert r["sample"] == [2, 28, 28, 1], (name, r)
    return result


def test_base_sampled_and_adversarial_steps_train_on_the_jax_backend():
    result = _train_on_jax(DEFAULT)
    assert result["vae"]["sample"] == [2, 28, 28, 1]
    aae = result["aae"]
    assert aae["iterations"] == [24, 24, 24], aae
    assert all(np.isfinite(aae["logs"][k]) for k in ("generator_loss", "discriminator_loss")), aae
    assert 0.2 < aae["logs"]["discriminator_loss"] < 1.5, aae  # a discriminator that neither wins nor is lost


@pytest.mark.slow
def test_every_other_variant_trains_on_the_jax_backend():
    assert _others(), "no variant beyond the default ones"
    _train_on_jax(_others())
