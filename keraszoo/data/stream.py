"""The deterministic, resumable training stream: :class:`EpochStream`.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so a run
restarted in the middle of an epoch sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

from keraszoo.data.images import as_image_array
from keraszoo.data.pipelines import bernoulli
from keraszoo.data.pipelines import check_batch_size
from keraszoo.data.pipelines import derive_key
from keraszoo.data.pipelines import scale
from keraszoo.data.pipelines import values_checked
from keraszoo.data.sources import binarize_array
from keraszoo.data.sources import check_binarize

__all__ = ["EpochStream"]


class EpochStream:
    """Deterministic per-epoch batches that a run can resume mid-epoch.

    The order of epoch ``e`` is a pure function of ``(seed, e)`` (a stateless
    permutation), and dynamic binarization of batch ``i`` of epoch ``e`` a
    pure function of ``(seed, e, i)``. Unlike ``Dataset.shuffle`` (whose
    order depends on how many times the dataset was iterated in *this*
    process), a process restarted at epoch ``e``, batch ``i`` therefore sees
    the very batches an uninterrupted run sees.

    Use :meth:`dataset` with ``model.fit(..., steps_per_epoch=None)`` and
    :meth:`callback` in the callbacks (it tells the pipeline which epoch
    starts); :meth:`partial_epoch` gives the rest of an interrupted epoch.

    Elements are image batches alone (``float32`` in ``[0, 1]``), or
    ``(images, labels)`` batches when ``labels`` are given (the conditional
    variants, ``requires_labels``, train on them; the others do not need them).

    Args:
        x: training images, ``uint8`` 0..255 or ``float32`` in ``[0, 1]``,
            ``(N, H, W[, C])``.
        batch_size: examples per (global) batch.
        seed: integer seed of the order and of dynamic binarization.
        binarize: ``None``, ``"dynamic"``, ``"static"`` or ``"threshold"``.
        drop_remainder: drop each epoch's last, smaller batch.
        labels: optional integer labels ``(N,)``, batched with the images.
    """

    def __init__(self, x, *, batch_size: int, seed: int = 0, binarize=None, drop_remainder=False, labels=None):
        import tensorflow as tf

        self.batch_size = check_batch_size(batch_size)
        self.seed = 0 if seed is None else int(seed)
        self.binarize = check_binarize(binarize)
        self.drop_remainder = bool(drop_remainder)
        x, is_uint8 = as_image_array(x)
        if labels is not None and len(labels) != len(x):
            raise ValueError(f"EpochStream: {len(x)} images but {len(labels)} labels; expected one label per image.")
        x = binarize_array(x, is_uint8, self.binarize, "from_numpy")  # the draws of from_numpy()
        self._is_uint8 = is_uint8
        self.num_examples = len(x)
        self.image_shape = tuple(x.shape[1:])
        if self.drop_remainder:
            self.steps_per_epoch = self.num_examples // self.batch_size
            if self.steps_per_epoch == 0:
                raise ValueError(
                    f"drop_remainder=True with batch_size={self.batch_size} leaves no batch "
                    f"of {self.num_examples} examples."
                )
        else:
            self.steps_per_epoch = -(-self.num_examples // self.batch_size)
        # Created outside any distribution strategy: a plain host variable
        # that the input pipeline reads when an epoch's iterator starts.
        with tf.init_scope(), tf.device("/cpu:0"):
            self._x = tf.constant(x)
            self._y = None if labels is None else tf.constant(labels)
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="stream_epoch")
        self._perm_key = derive_key(self.seed, "permutation")
        self._bin_key = derive_key(self.seed, "binarize")

    @property
    def examples_per_epoch(self) -> int:
        """Images seen per full epoch (fewer than ``num_examples`` with ``drop_remainder``)."""
        if self.drop_remainder:
            return self.steps_per_epoch * self.batch_size
        return self.num_examples

    def examples_from_step(self, step: int) -> int:
        """Images in the batches ``step .. steps_per_epoch - 1`` of an epoch."""
        return self.examples_per_epoch - min(step * self.batch_size, self.examples_per_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator of :meth:`dataset` produce epoch ``epoch``."""
        self._epoch.assign(int(epoch))

    def permutation(self, epoch):
        """The order of the examples in epoch ``epoch`` (a tensor of indices)."""
        import tensorflow as tf

        epoch = tf.cast(epoch, tf.int64)
        key = tf.stack([tf.constant(self._perm_key, tf.int64), epoch])
        return tf.random.experimental.stateless_shuffle(
            tf.range(self.num_examples, dtype=tf.int64), seed=key
        )

    def _epoch_batches(self, epoch, start_step):
        import tensorflow as tf

        perm = self.permutation(epoch)
        batches = tf.data.Dataset.from_tensor_slices(perm).batch(
            self.batch_size, drop_remainder=self.drop_remainder
        )
        batches = batches.enumerate().skip(start_step)
        epoch = tf.cast(epoch, tf.int64)
        steps = tf.constant(self.steps_per_epoch, tf.int64)
        x_t, y_t, is_uint8, binarize, bkey = self._x, self._y, self._is_uint8, self.binarize, self._bin_key

        def fetch(i, idx):
            xb = scale(tf.gather(x_t, idx), is_uint8)
            if binarize == "dynamic":
                key = tf.stack([tf.constant(bkey, tf.int64), epoch * steps + i])
                xb = bernoulli(xb, key)
            return xb if y_t is None else (xb, tf.gather(y_t, idx))

        return batches.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def dataset(self):
        """One epoch per iteration; which epoch is read from :meth:`set_epoch`.

        The cardinality is ``steps_per_epoch``. Use it with the
        :meth:`callback` in ``model.fit`` (which sets the epoch).
        """
        import tensorflow as tf

        var = self._epoch

        def one_epoch(_):
            return self._epoch_batches(var.read_value(), 0)

        ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).flat_map(one_epoch)
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        return values_checked(ds.prefetch(tf.data.AUTOTUNE))  # x was checked in full by as_image_array()

    def partial_epoch(self, epoch: int, start_step: int):
        """Batches ``start_step ..`` of epoch ``epoch`` (the rest of an interrupted epoch)."""
        import tensorflow as tf

        if not 0 <= start_step < self.steps_per_epoch:
            raise ValueError(
                f"start_step must be in [0, {self.steps_per_epoch}), got {start_step}."
            )
        ds = self._epoch_batches(tf.constant(int(epoch), tf.int64), int(start_step))
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch - start_step))
        return values_checked(ds.prefetch(tf.data.AUTOTUNE))  # x was checked in full by as_image_array()

    def callback(self):
        """A Keras callback that calls :meth:`set_epoch` at each epoch's start."""
        import keras

        stream = self

        class _SetStreamEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                stream.set_epoch(epoch)

        return _SetStreamEpoch()
