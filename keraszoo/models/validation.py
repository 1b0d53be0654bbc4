"""Argument and input checks that turn bad input into clear ``ValueError``s.

Every message says what was expected and what was received, so that users do
not have to decode a TensorFlow error from deep inside a layer.
"""

import math
import numbers
import re
import sys
import types

import keras
import numpy as np

from keraszoo.utils import check_positive_int


def check_image_shape(input_shape):
    try:
        if isinstance(input_shape, (str, bytes)) or any(
                isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in input_shape):
            raise TypeError
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"`input_shape` must be a tuple (height, width, channels) of positive "
            f"integers, e.g. (28, 28, 1); received {input_shape!r}."
        ) from None
    if len(shape) != 3 or any(d <= 0 for d in shape):
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with positive sizes, "
            f"channels last, e.g. (28, 28, 1) or (32, 32, 3); received {input_shape!r}."
        )
    return shape


def check_int_tuple(name, values, allow_empty=True):
    if values is None:
        return None
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"`{name}` must be a sequence of positive integers; received {values!r}.") from None
    for v in values:
        check_positive_int(f"{name}[...]", v)
    if not values and not allow_empty:
        raise ValueError(f"`{name}` must not be empty.")
    return tuple(int(v) for v in values)


# The models compute in float32: a weight or target beyond its range would overflow to inf (beta=1e300)
# or underflow to 0 (sparsity_target=1e-300) inside the loss, so such values are refused here.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def check_bool(name, value):
    """``value`` as a ``bool`` if it is one (NumPy's too), else a ``ValueError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; received {value!r}.")
    return bool(value)


def check_non_negative_int(name, value):
    """``value`` as an ``int`` if it is an integer >= 0 (NumPy integers too), else a ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0; received {value!r}.")
    return int(value)


def check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {value!r}.")
    if value > FLOAT32_MAX or 0 < value < FLOAT32_TINY:
        raise ValueError(
            f"`{name}` must be 0 or lie in float32's range [{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}] "
            f"(the models compute in float32); received {value!r}.")
    return value


def check_fraction(name, value, low_open=True, high_open=True):
    value = check_non_negative(name, value)
    bad_low = value <= 0 if low_open else value < 0
    bad_high = value >= 1 if high_open else value > 1
    if bad_low or bad_high:
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise ValueError(f"`{name}` must lie in {lo}, {hi}; received {value!r}.")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Unknown `{name}` {value!r}; expected one of {', '.join(repr(c) for c in choices)}."
        )
    return value


def concrete_value(x):
    """Returns ``x`` as a NumPy array when it holds concrete values, else ``None``.

    Symbolic tensors (Keras functional build, ``tf.function`` graphs, JAX
    tracers) have no values to check, so value checks are skipped for them.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor):
        return None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    try:
        return keras.ops.convert_to_numpy(x)
    except Exception:  # noqa: BLE001 - symbolic values of another framework
        return None


def _dims_match(shape, image_shape, strict=False):
    """``shape`` is ``image_shape``; unless ``strict``, unknown dimensions (``None``) match any size."""
    return len(shape) == len(image_shape) and all((d is None and not strict) or d == e
                                                  for d, e in zip(shape, image_shape))


def _shape_problem(shape, image_shape, owner, *, where="", dataset=False, strict=False):
    """The message for images of shape ``shape`` that are not ``(batch,) + image_shape``, else ``None``.

    ``where`` follows the received shape (e.g. `` in batch 3 of the generator``);
    ``dataset``: the hints speak of a dataset; ``strict``: unknown sizes do not match.
    """
    shape = tuple(shape)
    if len(shape) == len(image_shape) + 1 and _dims_match(shape[1:], image_shape, strict):
        return None
    expected = "(batch, " + ", ".join(str(d) for d in image_shape) + ")"
    hint = ""
    if len(shape) == len(image_shape) and _dims_match(shape, image_shape):
        hint = (" (the dataset yields single images: batch it, e.g. ds.batch(64))" if dataset
                else " (a single image: add a batch axis, e.g. x[None])")
    elif len(shape) == len(image_shape) and _dims_match(shape[1:], image_shape[:-1]) and image_shape[-1] == 1:
        hint = " (add the channel axis: x[..., None])"
    elif len(shape) == len(image_shape) + 1 and shape[-1] != image_shape[-1]:
        hint = f" (the model takes {image_shape[-1]} channel(s), the input has {shape[-1]})"
    return (f"{owner} expects images of shape {expected}, float32 in [0, 1], channels last; "
            f"received shape {shape}{where}{hint}.")


def check_images(x, image_shape, owner):
    """Checks a batch of images against the model's input contract.

    Expected: floating point, shape ``(batch,) + image_shape``, finite values in
    [0, 1]. Shape and dtype are checked always; values whenever they are
    concrete (eager calls), never inside compiled graphs.
    """
    problem = _shape_problem(tuple(x.shape), image_shape, owner, strict=True)
    if problem:
        raise ValueError(problem)
    try:
        dtype = keras.backend.standardize_dtype(x.dtype)
    except ValueError:  # object, string, ... arrays: dtypes Keras has no name for
        dtype = str(x.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"{owner} expects floating point images in [0, 1] (for uint8 pixels use "
            f"x.astype('float32') / 255); received dtype {dtype}."
        )
    values = concrete_value(x)
    if values is not None and values.size:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{owner} received NaN or Inf values; expected finite values in [0, 1].")
        lo, hi = float(values.min()), float(values.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(
                f"{owner} expects pixel values in [0, 1]; received values in [{lo:g}, {hi:g}]"
                + (" (divide uint8-range pixels by 255)." if hi > 1.5 else ".")
            )


# =========================================================================== training data
#
# ``fit`` and ``evaluate`` hold their data to the contract ``encode`` holds its input to (float
# images in [0, 1], finite, shape ``(batch,) + image_shape``), before the first weight update and
# at a cost that does not show in a training run (benchmarks/run.py --only data_checks):
#
# * Arrays (NumPy arrays, tensors, lists of images): shape and dtype, then every value, with two
#   reductions (min, max) per slice of CHECK_SLICE_VALUES values (60,000 MNIST digits: ~35 ms on
#   the dev CPU, once per ``fit`` call). NumPy's min/max propagate NaN, so NaN and Inf show up in
#   them without a boolean mask; a tensor is copied to the host one slice at a time, so the memory
#   the check needs stays bounded. Only on failure are the values looked at again, to say which
#   image is the first bad one and how many NaN/Inf there are.
# * ``tf.data.Dataset``: shape and dtype from ``element_spec`` (free, before anything runs). The
#   pipelines of keraszoo.data (from_numpy, load, from_directory, EpochStream: what the CLI and the
#   training engine feed ``fit``) checked their arrays in full when they were built and are marked
#   so (``_VALUES_CHECKED``): nothing more is done. Any other dataset gets the values of *every*
#   batch checked by a ``map`` appended to it -- min and max of the batch and a raw Assert op, run
#   by tf.data's threads ahead of the step -- so the first batch is checked before the first
#   weight update and a bad batch later in the stream stops the run where it appears. Not a peek
#   (``ds.take(1)`` before ``fit``): a second iteration advances a seeded
#   ``shuffle(reshuffle_each_iteration=True)`` or ``Dataset.random(rerandomize_each_iteration=True)``,
#   so a checked run would train on other batches than an unchecked one; it would also fill a
#   shuffle buffer twice and leave a ``cache(filename)`` half written. The map adds nothing to the
#   model's graph (no retrace, XLA unaffected) and runs wherever the pipeline runs: on the JAX
#   backend (which reads tf.data through NumPy) and under ``tf.distribute`` (before the dataset is
#   distributed). It costs the pipeline a few tenths of a millisecond per batch of 128 MNIST digits
#   on the dev CPU (its function call and the two reductions), in tf.data's threads beside the step.
#   A failed check raises inside TensorFlow; ``fit`` turns it back into a ValueError (the batch's
#   min and max travel between the markers _MARK and _END).
# * Python generators and ``keras.utils.PyDataset``: every batch as it is produced, in Python
#   (the array check on one batch); Keras itself reads the first batches before training to learn
#   their spec, so those are checked before the first step. A generator may yield images alone
#   (``x``), which Keras would refuse: they are passed on as ``(x,)``.
#
# Labels are passed on unchecked (``fit(x, y)``, ``(x, y)`` pairs): the unconditional variants
# ignore them; a conditional variant checks its own.

#: Values per slice of the array check (1 MiB of float32: both reductions read it from cache; fastest on the dev CPU).
CHECK_SLICE_VALUES = 1 << 18

_TOLERANCE = 1e-6
_MARK, _END = "@@keraszoo-data-check@@", "@@end-of-check@@"


def _range_hint(lo, hi):
    if hi > 1.5:
        return "divide uint8-range pixels by 255"
    if lo < 0 and lo >= -1 - _TOLERANCE:
        return "images scaled to [-1, 1]? use (x + 1) / 2"
    return ""


def _host(values):
    """A slice of an array or tensor as a NumPy array (a view when it already is one)."""
    if isinstance(values, np.ndarray):
        return values
    try:
        return np.asarray(values)
    except Exception:  # noqa: BLE001 - a tensor NumPy cannot take directly (e.g. on an accelerator)
        return np.asarray(keras.ops.convert_to_numpy(values))


def _value_statistics(x, first):
    """Counts of NaN and Inf and the range of the finite values of ``x`` (the failure path only)."""
    count = len(x)
    step = max(1, CHECK_SLICE_VALUES // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    nan = inf = 0
    lo, hi = math.inf, -math.inf
    for start in range(0, count, step):
        part = _host(x[start:start + step])
        finite = np.isfinite(part)
        nan += int(np.count_nonzero(np.isnan(part)))
        inf += int(part.size - np.count_nonzero(finite)) - int(np.count_nonzero(np.isnan(part)))
        if finite.any():
            lo, hi = min(lo, float(part[finite].min())), max(hi, float(part[finite].max()))
    return {"first": first, "nan": nan, "inf": inf, "lo": lo, "hi": hi}


def _bad_values(x):
    """``None`` when every value of ``x`` (at least one image) is finite and in [0, 1], else the statistics."""
    count = len(x)
    step = max(1, CHECK_SLICE_VALUES // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    for start in range(0, count, step):
        part = _host(x[start:start + step])
        if part.size == 0:
            continue
        if part.min() >= -_TOLERANCE and part.max() <= 1 + _TOLERANCE:  # NaN fails both comparisons
            continue
        flat = part.reshape(len(part), -1)
        good = (flat.min(axis=1) >= -_TOLERANCE) & (flat.max(axis=1) <= 1 + _TOLERANCE)
        return _value_statistics(x, start + int(np.argmin(good)))
    return None


def _values_message(owner, stats, where):
    if stats["nan"] or stats["inf"]:
        kinds = " and ".join(k for k, n in (("NaN", stats["nan"]), ("Inf", stats["inf"])) if n)
        counts = ", ".join(f"{n} {k}" for k, n in (("NaN", stats["nan"]), ("Inf", stats["inf"])) if n)
        return (f"{owner} received {kinds} values ({counts}, the first in {where}); expected finite values "
                "in [0, 1]. Check the data for missing or corrupt values.")
    lo, hi = stats["lo"], stats["hi"]
    hint = _range_hint(lo, hi)
    return (f"{owner} expects pixel values in [0, 1]; received values in [{lo:g}, {hi:g}] (the first image "
            f"outside: {where}{'; ' + hint if hint else ''}).")


def check_image_array(x, image_shape, owner, *, name="x", batch=None):
    """Checks training images ``x`` (an array or tensor, in full) against the model's input contract.

    Shape ``(N,) + image_shape`` with ``N >= 1``, a floating dtype, every value finite
    and in [0, 1]. ``batch`` (e.g. ``"batch 3 of the generator"``) says that ``x`` is
    one batch of a stream, for the messages.

    Raises:
        ValueError: naming what was expected and what was received (the first bad image).
    """
    where = f" in {batch}" if batch else ""
    shape = tuple(x.shape)
    problem = _shape_problem(shape, image_shape, owner, where=where, strict=True)
    if problem:
        raise ValueError(problem)
    if shape[0] == 0:
        raise ValueError(f"{owner} received no images{where} (shape {shape}); expected at least one image "
                         f"of shape {tuple(image_shape)}.")
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "float" not in dtype:
        raise ValueError(f"{owner} expects floating point images in [0, 1] (for uint8 pixels use "
                         f"x.astype('float32') / 255); received dtype {dtype}{where}.")
    stats = _bad_values(x)
    if stats is not None:
        index = f"image {stats['first']} of {batch}" if batch else f"{name}[{stats['first']}]"
        raise ValueError(_values_message(owner, stats, index))


def check_optional_positive_int(owner, name, value):
    """``None`` or a positive integer, else a ValueError naming ``owner``'s argument ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer or None; received {value!r}.")
    return int(value)


def check_fit_arguments(owner, *, batch_size=None, epochs=1, initial_epoch=0, steps_per_epoch=None,
                        validation_steps=None, validation_batch_size=None, validation_freq=1):
    """The counting arguments of ``fit`` (Keras accepts ``batch_size=0`` and ``epochs=0`` silently)."""
    for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                        ("validation_steps", validation_steps), ("validation_batch_size", validation_batch_size)):
        check_optional_positive_int(owner, name, value)
    for name, value in (("epochs", epochs), ("validation_freq", validation_freq)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{owner}: `{name}` must be a positive integer; received {value!r}"
                             + (" (nothing would be trained)." if name == "epochs" else "."))
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral) or initial_epoch < 0:
        raise ValueError(f"{owner}: `initial_epoch` must be an integer >= 0; received {initial_epoch!r}.")


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
            check_image_array(data, self.image_shape, who, name=label or name)
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
                check_image_array(x, self.image_shape, who, batch=where)
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
            problem = _shape_problem(tuple(shape.as_list()), self.image_shape, who,
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
        good = tf.logical_and(lo >= -_TOLERANCE, hi <= 1 + _TOLERANCE)
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
    hint = _range_hint(lo, hi)
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
