"""Compiled inference: the model's ``encode``/``decode``/``reconstruct`` as graphs, reused.

Called eagerly, a Keras functional network dispatches its layers one op at a
time from Python: about 8-11 ms to encode one MNIST image on the 2-core
development CPU, most of it overhead. :class:`CompiledFunctions` traces each
inference function once per model -- a ``tf.function`` with a batch-agnostic
input signature on TensorFlow, a ``jax.jit`` of a stateless call on JAX -- and
reuses it for every batch size. Weights are read at call time, so training or
loading weights after the first call is seen by the next one.

Large batches run in chunks of at most ``CHUNK_ELEMENTS`` input numbers, which
keeps the activations' memory bounded whatever the batch size.

Symbolic inputs (a Keras functional graph, a user's own ``tf.function`` or
``jax.jit``) bypass the cache: the function is then simply called, inside the
caller's graph.
"""

from __future__ import annotations

import math

import keras
from keras import ops

#: the most input numbers one compiled call processes (4M floats: 5,350 MNIST images).
CHUNK_ELEMENTS = 1 << 22


def is_symbolic(x) -> bool:
    """True for tensors without values: Keras symbolic tensors, TF graph tensors, JAX tracers."""
    if isinstance(x, keras.KerasTensor):
        return True
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if backend == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


class CompiledFunctions:
    """Per-model cache of compiled one-input functions, keyed by name."""

    def __init__(self, model):
        self._model = model
        self._functions = {}

    def __call__(self, name, fn, x, item_shape):
        """``fn(x)`` through the compiled function ``name``; ``x`` a tensor of shape ``(batch,) + item_shape``."""
        if is_symbolic(x):
            return fn(x)
        compiled = self._functions.get(name)
        if compiled is None:
            compiled = self._functions[name] = self._compile(fn, item_shape, x.dtype)
        per_item = max(1, math.prod(item_shape))
        chunk = max(1, CHUNK_ELEMENTS // per_item)
        batch = int(x.shape[0])
        if batch == 0:
            # An empty batch: the outputs of one blank image, cut to none. TensorFlow's CPU convolution
            # fails on an empty float16 batch ("input depth must be evenly divisible by filter depth").
            blank = ops.zeros((1,) + tuple(item_shape), dtype=x.dtype)
            return keras.tree.map_structure(lambda t: t[:0], compiled(blank))
        if batch <= chunk:
            return compiled(x)
        parts = [compiled(x[i:i + chunk]) for i in range(0, batch, chunk)]
        return ops.concatenate(parts, axis=0)

    def clear(self):
        self._functions.clear()

    def _compile(self, fn, item_shape, dtype):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec((None,) + tuple(item_shape), dtype)
            return tf.function(fn, input_signature=[spec], autograph=False, reduce_retracing=True)
        if backend == "jax":
            return self._jax_function(fn)
        return fn

    def _jax_function(self, fn):
        import jax

        model = self._model

        def stateless(trainable, non_trainable, x):
            mapping = list(zip(model.trainable_variables, trainable)) + list(
                zip(model.non_trainable_variables, non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(x)

        jitted = jax.jit(stateless)

        def run(x):
            return jitted([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables], x)

        return run
