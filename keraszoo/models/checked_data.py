"""The data checks of ``fit`` and ``evaluate``: :class:`TrainingData` and the wrapped streams.

``fit`` and ``evaluate`` hold their data to the contract ``encode`` holds its input to (float
images in [0, 1], finite, shape ``(batch,) + image_shape``), before the first weight update and
at a cost that does not show in a training run (benchmarks/run.py --only data_checks):

* Arrays (NumPy arrays, tensors, lists of images): shape and dtype, then every value, with two
  reductions (min, max) per slice of CHECK_SLICE_VALUES values (60,000 MNIST digits: ~35 ms on
  the dev CPU, once per ``fit`` call). NumPy's min/max propagate NaN, so NaN and Inf show up in
  them without a boolean mask; a tensor is copied to the host one slice at a time, so the memory
  the check needs stays bounded. Only on failure are the values looked at again, to say which
  image is the first bad one and how many NaN/Inf there are.
* ``tf.data.Dataset``: shape and dtype from ``element_spec`` (free, before anything runs). The
  pipelines of keraszoo.data (from_numpy, load, from_directory, EpochStream: what the CLI and the
  training engine feed ``fit``) checked their arrays in full when they were built and are marked
  so (``_VALUES_CHECKED``): nothing more is done. Any other dataset gets the values of *every*
  batch checked by a ``map`` appended to it -- min and max of the batch and a raw Assert op, run
  by tf.data's threads ahead of the step -- so the first batch is checked before the first
  weight update and a bad batch later in the stream stops the run where it appears. Not a peek
  (``ds.take(1)`` before ``fit``): a second iteration advances a seeded
  ``shuffle(reshuffle_each_iteration=True)`` or ``Dataset.random(rerandomize_each_iteration=True)``,
  so a checked run would train on other batches than an unchecked one; it would also fill a
  shuffle buffer twice and leave a ``cache(filename)`` half written. The map adds nothing to the
  model's graph (no retrace, XLA unaffected) and runs wherever the pipeline runs: on the JAX
  backend (which reads tf.data through NumPy) and under ``tf.distribute`` (before the dataset is
  distributed). It costs the pipeline a few tenths of a millisecond per batch of 128 MNIST digits
  on the dev CPU (its function call and the two reductions), in tf.data's threads beside the step.
  A failed check raises inside TensorFlow; ``fit`` turns it back into a ValueError (the batch's
  min and max travel between the markers _MARK and _END).
* Python generators and ``keras.utils.PyDataset``: every batch as it is produced, in Python
  (the array check on one batch); Keras itself reads the first batches before training to learn
  their spec, so those are checked before the first step. A generator may yield images alone
  (``x``), which Keras would refuse: they are passed on as ``(x,)``.

Labels are passed on unchecked (``fit(x, y)``, ``(x, y)`` pairs): the unconditional variants
ignore them; a conditional variant checks its own.
"""

import math
import re
import sys
import types

import keras
import numpy as np

from keraszoo.models import image_checks

_MARK, _END = "@@keraszoo-data-check@@", "@@end-of-check@@"


def _tensorflow():
    """TensorFlow if it is imported already (a tf.data dataset exists only then), else ``None``."""
    return sys.modules.get("tensorflow")


def _is_dataset(data):
    tf = _tensorflow()
    return tf is not None and isinstance(data, tf.data.Dataset)


class TrainingData:
    """The data checks of one ``fit`` or ``evaluate`` call (see the section's comment).

    ``owner`` names the call, e.g. ``"VAE.fit"``. :meth:`inputs` checks (and, for
    streams, wraps) ``x``; :meth:`validation` the ``validation_data``;
    :meth:`translate` turns an error a failed check raised inside the input
    pipeline back into its ValueError.
    """

    def __init__(self, image_shape, owner):
        self.image_shape = tuple(image_shape)
        self.owner = owner
        #: errors the checks raised inside streams (a generator's batch): :meth:`translate` re-raises the first.
        self.errors = []
        #: whether a stream (dataset, generator, PyDataset) was wrapped: its checks fail inside ``fit``'s loop.
        self.streams = False

    def _who(self, name):
        return f"{self.owner}({name})"

    # ------------------------------------------------------------------ entry points
    def inputs(self, data, name="x", label=None):
        """``data`` (what ``fit``/``evaluate`` take as ``x``), checked; streams come back wrapped.

        ``name`` is the argument (``"x"``, ``"validation_data"``), ``label`` what the
        messages call the array when they point at an image (``x[3]``; default ``name``).
        """
        who = self._who(name)
        if data is None:
            return None
        if _is_dataset(data):
            self.streams = True
            return self._dataset(data, who)
        if isinstance(data, keras.utils.PyDataset):
            self.streams = True
            return self._py_dataset(data, who)
        if isinstance(data, types.GeneratorType):
            self.streams = True
            return self._generator(data, who)
        if all(hasattr(data, a) for a in ("dataset", "callback", "partial_epoch")):  # a keraszoo.data.EpochStream
            raise ValueError(f"{who} takes the stream's dataset, not the EpochStream itself: pass stream.dataset() "
                             "(and stream.callback() in callbacks, which sets the epoch).")
        if isinstance(data, dict):
            raise ValueError(f"{who} takes the images as one array (batch, "
                             + ", ".join(map(str, self.image_shape)) + f"); received a dict with keys {sorted(data)}.")
        if isinstance(data, (list, tuple)):
            data = self._stacked(data, who, name)
        if hasattr(data, "shape") and hasattr(data, "dtype"):
            image_checks.check_image_array(data, self.image_shape, who, name=label or name)
        return data  # anything else (a torch DataLoader, ...) goes to Keras unchecked

    def validation(self, data):
        """``validation_data``: ``(x_val,)``, ``(x_val, y_val[, sw])``, an array, a dataset or a stream."""
        if isinstance(data, (list, tuple)) and 1 <= len(data) <= 3 and not self._all_images(data):
            return (self.inputs(data[0], "validation_data", "x_val"),) + tuple(data[1:])
        return self.inputs(data, "validation_data", "x_val")

    def translate(self, err):
        """The ValueError a check raised inside the pipeline that ``err`` reports, or ``None``."""
        if self.errors:
            return self.errors[0]
        return dataset_check_error(err)

    # ------------------------------------------------------------------ arrays
    def _all_images(self, items):
        """Every item of a list/tuple is one image (a list of images), not arrays of images."""
        return all(hasattr(i, "shape") and len(i.shape) == len(self.image_shape) for i in items)

    def _stacked(self, items, who, name):
        if items and hasattr(items[0], "shape") and len(items[0].shape) == len(self.image_shape) + 1:
            raise ValueError(
                f"{who} takes the images as one array (batch, " + ", ".join(map(str, self.image_shape))
                + f"); received a {type(items).__name__} of {len(items)} arrays. Labels, if any, go in y "
                "(autoencoders ignore them): fit(x, y).")
        try:
            array = np.asarray(items)
        except ValueError as err:
            raise ValueError(f"{who}: a {type(items).__name__} that is not one array of images "
                             f"(batch, {', '.join(map(str, self.image_shape))}): {err}") from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise ValueError(f"{who} expects floating point images in [0, 1]; received a {type(items).__name__} "
                             f"that makes an array of dtype {array.dtype}.")
        return array

    # ------------------------------------------------------------------ streams
    def _batch(self, batch, who, where):
        """One batch of a generator or PyDataset: ``x`` or ``(x[, y[, sample_weight]])``, checked; a tuple."""
        if isinstance(batch, list):
            batch = tuple(batch)
        if isinstance(batch, dict):
            error = ValueError(f"{who} takes batches of images x or (x, y) tuples; {where} is a dict "
                               f"with keys {sorted(batch)}.")
        elif isinstance(batch, tuple) and not 1 <= len(batch) <= 3:
            error = ValueError(f"{who} takes batches of images x or (x, y) tuples; {where} is a tuple of "
                               f"{len(batch)} items.")
        else:
            if not isinstance(batch, tuple):
                batch = (batch,)
            x = batch[0]
            if not (hasattr(x, "shape") and hasattr(x, "dtype")):
                x = np.asarray(x)
                batch = (x,) + batch[1:]
            try:
                image_checks.check_image_array(x, self.image_shape, who, batch=where)
                return batch
            except ValueError as err:
                error = err
        self.errors.append(error)
        raise error

    def _generator(self, generator, who):
        def checked():
            for index, batch in enumerate(generator, 1):
                yield self._batch(batch, who, f"batch {index} of the generator")

        return checked()

    def _py_dataset(self, dataset, who):
        if dataset.num_batches == 0:
            raise ValueError(f"{who} received a PyDataset of no batches (len 0); expected at least one batch.")
        return CheckedPyDataset(dataset, self, who)

    # ------------------------------------------------------------------ tf.data
    def _dataset(self, ds, who):
        tf = _tensorflow()
        spec = ds.element_spec
        nested = isinstance(spec, (tuple, list))
        x_spec = spec[0] if nested and 1 <= len(spec) <= 3 else spec
        if not isinstance(x_spec, tf.TensorSpec):
            raise ValueError(f"{who} takes a dataset of image batches x or (x, y) tuples; received a dataset "
                             f"whose elements are {spec}.")
        shape = x_spec.shape
        if shape.rank is not None:
            problem = image_checks.shape_problem(tuple(shape.as_list()), self.image_shape, who,
                                     where=" (the dataset's element_spec)", dataset=True)
            if problem:
                raise ValueError(problem)
        dtype = keras.backend.standardize_dtype(x_spec.dtype)
        if "float" not in dtype:
            raise ValueError(f"{who} expects floating point images in [0, 1]; the dataset yields dtype {dtype} "
                             "(scale uint8 pixels in the pipeline, e.g. tf.cast(x, tf.float32) / 255, or build "
                             "it with keraszoo.data.from_numpy, which does).")
        if int(ds.cardinality()) == 0:
            raise ValueError(f"{who} received a dataset of no batches (cardinality 0); expected at least one batch.")
        if _values_checked(ds):
            return ds
        # One checked pipeline per dataset and argument, kept on the dataset: fit(ds) called again
        # (an epoch at a time, say) neither traces the map again nor starts a new pipeline.
        cache = getattr(ds, "_keraszoo_checked", None)
        if cache is None:
            cache = {}
            try:
                ds._keraszoo_checked = cache
            except AttributeError:  # pragma: no cover - a dataset class that takes no attributes
                pass
        if who not in cache:
            check = _batch_check(who)
            if nested:
                def checked(*element):
                    return (check(element[0]),) + tuple(element[1:])
            else:
                checked = check
            cache[who] = ds.map(checked, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return cache[who]


#: ``keraszoo.data.pipelines.VALUES_CHECKED`` (not imported: keraszoo.data stays free of Keras): the mark of
#: the pipelines keraszoo.data builds (from_numpy, load, from_directory, EpochStream), whose arrays were
#: checked in full when they were built; their batches need no second check.
_VALUES_CHECKED = "_keraszoo_values_checked"


def _values_checked(ds):
    """``ds`` is a keraszoo.data pipeline, possibly under ``with_options`` (which keeps its values)."""
    while ds is not None:
        if getattr(ds, _VALUES_CHECKED, False):
            return True
        if type(ds).__name__ != "_OptionsDataset":  # fit_resumable sets the sharding options on the stream's dataset
            return False
        ds = getattr(ds, "_input_dataset", None)
    return False


def _batch_check(who):
    """``x -> x`` for a tf.data ``map``: fails the pipeline when a batch has NaN/Inf or values outside [0, 1].

    The failed assertion carries ``who`` and the batch's min and max between :data:`_MARK`
    and :data:`_END`; :func:`dataset_check_error` makes the ValueError from them in Python.
    """
    tf = _tensorflow()

    def check(x):
        # Two reductions (~0.1 ms for 128 MNIST digits on the dev CPU; an elementwise range mask
        # costs 5 times that). tf.data runs on the host CPU, whose min/max propagate NaN (as
        # NumPy's do; tests/models/test_fit_input_checks.py holds TensorFlow to it), and NaN
        # fails both comparisons, so NaN, Inf and out-of-range values all fail ``good``.
        lo, hi = tf.reduce_min(x), tf.reduce_max(x)
        good = tf.logical_and(lo >= -image_checks.TOLERANCE, hi <= 1 + image_checks.TOLERANCE)
        # The raw op, not tf.debugging.Assert: that one wraps the assertion in a tf.cond (to keep
        # data on an accelerator), which makes every iterator of the pipeline slower to start.
        verdict = tf.raw_ops.Assert(condition=good, data=[tf.constant(_MARK), tf.constant(who), tf.cast(lo, tf.float32),
                                                          tf.cast(hi, tf.float32), tf.constant(_END)], summarize=1)
        with tf.control_dependencies([verdict]):
            return tf.identity(x)

    return check


_ASSERTED = re.compile(re.escape(_MARK) + r"\] \[(?P<who>[^\]]*)\] \[(?P<lo>[^\]]*)\] \[(?P<hi>[^\]]*)\] \["
                       + re.escape(_END))


def dataset_check_error(err):
    """The ValueError of a batch check that failed inside a tf.data pipeline, from the error ``err`` it caused."""
    found = _ASSERTED.search(str(err))
    if not found:
        return None
    who, lo, hi = found["who"], float(found["lo"]), float(found["hi"])
    where = "a batch of the dataset"
    if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or math.isinf(hi):
        kind = "NaN" if math.isnan(lo) or math.isnan(hi) else "Inf"
        return ValueError(f"{who} received {kind} values in {where}; expected finite values in [0, 1]. "
                          "Check the data for missing or corrupt values.")
    hint = image_checks.range_hint(lo, hi)
    return ValueError(f"{who} expects pixel values in [0, 1]; {where} holds values in [{lo:g}, {hi:g}]"
                      + (f" ({hint})." if hint else "."))


class CheckedPyDataset(keras.utils.PyDataset):
    """A ``keras.utils.PyDataset`` whose every batch is checked as it is read (its workers run the check)."""

    def __init__(self, dataset, checks, who):
        super().__init__(workers=dataset.workers, use_multiprocessing=dataset.use_multiprocessing,
                         max_queue_size=dataset.max_queue_size)
        self.dataset = dataset
        self.checks = checks
        self.who = who

    def __len__(self):
        return len(self.dataset)

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def __getitem__(self, index):
        return self.checks._batch(self.dataset[index], self.who, f"PyDataset[{index}]")

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()
