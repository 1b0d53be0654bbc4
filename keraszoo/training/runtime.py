"""Runtime choices of a training run, and the description of where it ran.

* seeds and op determinism, mixed precision, XLA and ``steps_per_execution``
  defaults per device, ``tf.distribute`` strategies
  (``keras.distribution.DataParallel`` on the JAX backend);
* the hardware / version description written into a model's recipe.

TensorFlow and Keras are imported lazily, inside the functions, so that
``--help`` answers instantly.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import platform
import sys

from keraszoo.training.recipe import UsageError
from keraszoo.utils import check_positive_int

# --------------------------------------------------------------------------
# Hardware, versions, runtime settings
# --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def gpu_devices():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def hardware_info() -> dict:
    """``{"description": str, "cpu", "cpu_cores", "gpus": [names]}``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    gpus = []
    try:
        import tensorflow as tf

        for dev in gpu_devices():
            details = tf.config.experimental.get_device_details(dev)
            gpus.append(details.get("device_name", dev.name))
    except Exception:  # noqa: BLE001 - description only
        pass
    cpu = _cpu_model()
    desc = f"{cpu}, {cores} cores"
    if gpus:
        desc = f"{len(gpus)}x {gpus[0]} + " + desc
    else:
        desc += ", no GPU"
    return {"description": desc, "cpu": cpu, "cpu_cores": cores, "gpus": gpus}


def versions() -> dict:
    import keras

    from keraszoo.version import __version__

    out = {
        "keraszoo": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
    }
    try:
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    except ImportError:
        out["tensorflow"] = None
    import numpy

    out["numpy"] = numpy.__version__
    return out


def resolve_jit(setting: str) -> bool:
    """``--jit-compile auto|on|off`` -> bool. ``auto``: on only with a GPU.

    XLA fuses the many small ops of these models well on GPUs; on CPUs it
    usually makes them slower (the keras.io VAE ran at 0.67x on a 2-core CPU).
    """
    if setting == "on":
        return True
    if setting == "off":
        return False
    return bool(gpu_devices())


def resolve_steps_per_execution(setting) -> int:
    """``--steps-per-execution auto|N``. ``auto``: 32 with a GPU, 16 on CPU.

    Several steps per ``tf.function`` call hide the per-step Python and
    dispatch overhead, which dominates for these small models on a GPU; on
    the 2-core development CPU 16 steps gave about 10-20 % more images/s than
    1 (dense VAE, MNIST, batch 128).
    """
    if setting in (None, "auto"):
        return 32 if gpu_devices() else 16
    try:
        return check_positive_int("--steps-per-execution", int(setting))
    except ValueError as err:
        raise UsageError(str(err)) from None


def resolve_runtime(jit_compile, steps_per_execution, deterministic, distribution):
    """``(deterministic, jit, steps_per_execution)`` for the run's settings on this machine."""
    gpu = bool(gpu_devices())
    determinism_on = {"on": True, "off": False}.get(deterministic, not gpu)
    spe = resolve_steps_per_execution(steps_per_execution)
    spe = check_spe_for_replicas(spe, distribution, explicit=steps_per_execution != "auto")
    return determinism_on, resolve_jit(jit_compile), spe


def check_spe_for_replicas(spe: int, distribution, *, explicit: bool) -> int:
    """``steps_per_execution`` that works with the strategy: 1 with several TF replicas.

    Keras 3 (3.15, TF 2.21) fails with "You must feed a value for placeholder
    tensor 'while/cond/...'" when ``steps_per_execution > 1`` runs under a
    multi-replica ``tf.distribute`` strategy (keras-team/keras#19246).
    """
    if spe > 1 and distribution.strategy is not None and distribution.num_replicas > 1:
        if explicit:
            print(
                f"warning: --steps-per-execution {spe} does not work with {distribution.num_replicas} "
                "tf.distribute replicas in Keras 3 (keras-team/keras#19246); using 1.",
                file=sys.stderr,
            )
        return 1
    return spe


def setup_cpu_replicas(n: int) -> None:
    """Split the CPU into ``n`` logical devices (before TensorFlow initializes)."""
    if not n or n <= 1:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError as e:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != n:
            raise UsageError(
                f"--cpu-replicas {n}: TensorFlow is already initialized with {existing} CPU "
                "device(s) in this process; run the script in a fresh process."
            ) from e


@contextlib.contextmanager
def determinism(seed: int, enabled: bool):
    """Seed Python/NumPy/TF/Keras and optionally enable TF op determinism.

    Restores the previous op-determinism setting on exit, so that calling
    ``main()`` from another program does not change it for good.
    """
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(int(seed))
    was = tf_config.is_op_determinism_enabled()
    if enabled and not was:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not was and hasattr(tf_config, "disable_op_determinism"):
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def dtype_policy(mixed: bool):
    """``mixed_float16`` on GPUs when asked (float32 otherwise); restored on exit."""
    import keras

    previous = keras.config.dtype_policy()
    name = "float32"
    if mixed:
        if gpu_devices():
            name = "mixed_float16"
        else:
            print(
                "warning: --mixed-precision needs a GPU (float16 matmuls are slow on CPUs); "
                "training in float32.",
                file=sys.stderr,
            )
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model):
    """A float32 copy of ``model`` (same class, config and weights, no optimizer).

    A model trained under ``mixed_float16`` records that policy in its
    config; the published model must compute in float32 wherever it is
    loaded, so the scripts save this copy instead.
    """
    import keras

    config = dict(model.get_config())
    config["dtype"] = "float32"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = type(model).from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def patch_multiworker_metric_mean() -> None:
    """Make Keras 3 average scalar metrics across the workers of a ``MultiWorkerMirroredStrategy``.

    Keras 3 (3.15) reduces each logged metric with ``strategy.reduce("MEAN", v, axis=0)``
    under a multi-worker strategy, which fails on a scalar ("Invalid reduction dimension 0
    for input with 0 dimensions", tensorflow/tensorflow#72388): ``fit`` cannot run at all.
    This replaces only that case by ``axis=None`` (the mean over the replicas of each
    replica's value, as Keras does on one machine); every other case is Keras' own. Idempotent.
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "_keraszoo_multiworker_mean", False):
        return
    import tensorflow as tf

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                if not trainer._is_per_replica_instance(v) and getattr(v, "shape", None) is not None \
                        and len(v.shape) == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._keraszoo_multiworker_mean = True
    trainer.reduce_per_replica = reduce_per_replica


class Distribution:
    """The ``--strategy`` in effect: scope, replica count, chief or not."""

    def __init__(self, name: str):
        import keras

        self.name = name
        self.backend = keras.backend.backend()
        self.strategy = None
        self.is_chief = True
        self.worker_index = 0
        if self.backend == "jax":
            self._setup_jax(name)
            return
        import tensorflow as tf

        if name == "default":
            self.strategy = tf.distribute.get_strategy()
        elif name == "mirrored":
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus] or [
                d.name for d in tf.config.list_logical_devices("CPU")
            ]
            self.strategy = tf.distribute.MirroredStrategy(devices=devices)
        elif name == "multiworker":
            if "TF_CONFIG" not in os.environ:
                raise UsageError(
                    "--strategy multiworker reads the cluster from the TF_CONFIG environment "
                    "variable, which is not set."
                )
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
            patch_multiworker_metric_mean()
            cfg = json.loads(os.environ["TF_CONFIG"])
            task = cfg.get("task", {})
            kind, index = task.get("type", "worker"), int(task.get("index", 0))
            has_chief = "chief" in cfg.get("cluster", {})
            self.is_chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
            self.worker_index = index if kind == "worker" else 0
        else:
            raise UsageError(f"Unknown --strategy {name!r}.")

    def _setup_jax(self, name):
        import keras

        if name == "default":
            return
        if name == "multiworker":
            keras.distribution.initialize()
        keras.distribution.set_distribution(keras.distribution.DataParallel())

    @property
    def num_replicas(self) -> int:
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        import keras

        dist = keras.distribution.distribution()
        return len(dist.device_mesh.devices.reshape(-1)) if dist is not None else 1

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
