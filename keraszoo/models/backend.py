"""Workarounds for the Keras backends and ``tf.distribute`` that the models need.

* :func:`replica_scale`: a custom loss on a per-replica batch is divided by the replica count
  (Keras' optimizer sums gradients over replicas).
* :class:`ReplicaSeedGenerator`: draws that differ between ``tf.distribute`` replicas.
* :func:`data_check_errors`: ``fit``/``evaluate`` turn a data check that failed inside the input
  pipeline back into its ValueError, and on JAX leave the model with its variables' values.
"""

import contextlib

import keras


def replica_scale():
    """1 / num_replicas under a ``tf.distribute`` replica context, else 1.

    Keras' optimizer sums gradients over replicas, so a custom loss computed
    on a per-replica batch must be divided by the replica count.
    """
    if keras.backend.backend() != "tensorflow":
        return 1.0
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return 1.0
    return 1.0 / ctx.num_replicas_in_sync


@contextlib.contextmanager
def data_check_errors(model, checks):
    """Re-raises the ValueError of a data check that failed inside the input pipeline (see ``TrainingData``).

    On the JAX backend, Keras' ``fit``/``evaluate`` detach the variables' values while the loop runs
    and re-attach them after a completed step; a stream whose *first* batch fails the check would
    leave the model without any. The values (immutable JAX arrays: references, no copies; the first
    step donates them) are kept and put back in that case, so the model stays usable.
    """
    kept = None
    if checks is not None and checks.streams and keras.backend.backend() == "jax":
        kept = [(v, v.value) for v in _jax_loop_variables(model)]
    try:
        yield
    except Exception as err:
        if kept is not None:
            _reattach(kept)
        replacement = None if checks is None else checks.translate(err)
        if replacement is None:
            raise
        raise replacement from None


def _jax_loop_variables(model):
    """The variables whose values Keras' JAX loops detach (``Trainer._purge_model_variables``)."""
    optimizer = getattr(model, "optimizer", None)  # none before compile
    return (list(model.trainable_variables) + list(model.non_trainable_variables)
            + (list(optimizer.variables) if optimizer is not None else []) + list(model.metrics_variables))


def _reattach(kept):
    for variable, value in kept:
        if getattr(variable, "_value", True) is None and not value.is_deleted():  # detached, never re-attached
            variable.assign(value)


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A ``SeedGenerator`` whose draws differ between ``tf.distribute`` replicas.

    Every replica of a mirrored model holds the same generator state, so a
    plain ``SeedGenerator`` would hand every replica the same noise (the same
    reparameterization ``eps`` for different examples). Offsetting the drawn
    seed by the replica id keeps the draws independent; with one replica the
    draws are exactly those of ``SeedGenerator``.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        if keras.backend.backend() != "tensorflow":
            return seed
        import tensorflow as tf

        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            return seed
        replica = tf.cast(ctx.replica_id_in_sync_group, seed.dtype)
        return seed + tf.stack([replica * 1_000_003, tf.zeros_like(replica)])
