"""``mirrored_2cpu_vs_1``: the dense VAE's ``fit`` under MirroredStrategy over 2 logical CPUs vs none.

Run by :mod:`benchmarks.run` in a fresh process, because TensorFlow fixes its
logical devices when it initializes: the CPU is split into two logical devices
before anything else touches TensorFlow. Both sides live in this one process and
take turns epoch by epoch (the model without a strategy runs on the first logical
CPU, with TensorFlow's thread pools over every core, as it does by default).
Prints ``RESULT`` followed by ``{side: [images/s of each round]}`` as JSON.

``steps_per_execution`` stays 1 on both sides: Keras 3 cannot run more than one
step per call under a multi-replica strategy (keras-team/keras#19246).
"""

import argparse
import json
import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.path.insert(0, str(REPO_ROOT))
    from keraszoo.training.runtime import setup_cpu_replicas

    setup_cpu_replicas(2)  # before TensorFlow initializes

    import numpy as np
    import tensorflow as tf

    from benchmarks import figures
    from keraszoo.models import VAE
    from keraszoo.samples import load_mnist_sample

    # The digits do not change the speed; the bundled sample spares this process a second copy of MNIST.
    sample, _ = load_mnist_sample()
    x = np.resize(sample, (args.images,) + sample.shape[1:])

    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    with strategy.scope():
        mirrored = VAE(input_shape=(28, 28, 1), seed=0)
        mirrored.compile()
    single = VAE(input_shape=(28, 28, 1), seed=0)
    single.compile()
    sides = [figures.keras_side("mirrored_2cpu", mirrored, x, args.batch_size),
             figures.keras_side("no_strategy", single, x, args.batch_size)]
    rates = figures.interleave(sides, args.rounds, log=lambda line: print(line, file=sys.stderr))
    print("RESULT" + json.dumps({"rates": rates, "replicas": strategy.num_replicas_in_sync}))


if __name__ == "__main__":
    main()
