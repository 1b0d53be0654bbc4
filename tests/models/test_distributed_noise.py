"""Under MirroredStrategy every replica must draw its own noise (two logical CPUs, subprocess)."""

import json
import subprocess
import sys

SCRIPT = r"""
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras import ops
from keraszoo.models import VAE, losses
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = VAE(input_shape=(28, 28, 1), latent_dim=4, hidden_dims=(8,), seed=0)
@tf.function
def draw():
    def per_replica():
        zeros = tf.zeros((3, 4))
        return losses.reparameterize(zeros, zeros, model.seed_generator)
    return strategy.run(per_replica)
values = [v.numpy().tolist() for v in strategy.experimental_local_results(draw())]
print("RESULT" + json.dumps(values))
"""


def test_replicas_draw_different_noise():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert first != second, "both replicas drew the same eps"
