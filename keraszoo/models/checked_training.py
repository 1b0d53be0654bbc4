"""``fit`` and ``evaluate`` with their arguments and data checked: :class:`CheckedTrainingMixin`.

The methods take Keras' own arguments (positionally too) and forward them to
``keras.Model.fit``/``evaluate``; what they add is the argument checks, the
data checks of :mod:`keraszoo.models.checked_data` and the model's own
:meth:`~keraszoo.models.base.BaseAutoEncoder.training_callbacks`.
"""

import inspect

import keras
import numpy as np

from keraszoo.models import checked_data
from keraszoo.models import checks
from keraszoo.models.backend import data_check_errors

#: the counting arguments of ``fit`` that :func:`~keraszoo.models.checks.check_fit_arguments` checks.
_FIT_COUNTS = ("batch_size", "epochs", "initial_epoch", "steps_per_epoch", "validation_steps",
               "validation_batch_size", "validation_freq")


def _arguments(method, args, kwargs):
    """``{name: value}`` of a call of the bound Keras ``method``, its defaults filled in (a TypeError as Python's)."""
    bound = inspect.signature(method).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.update(arguments.pop("kwargs", {}))  # evaluate's **kwargs
    return arguments


class CheckedTrainingMixin:
    """``fit``/``evaluate`` for ``keras.Model`` subclasses with an ``image_shape`` (``BaseAutoEncoder``)."""

    #: Whether ``fit`` and ``evaluate`` check their data (see :meth:`fit`); their
    #: ``check_data`` argument overrides it for one call.
    check_data = True

    def fit(self, x=None, y=None, *args, check_data=None, **kwargs):
        """``keras.Model.fit``, with the training data checked as ``encode`` checks its input.

        ``x`` (and ``validation_data``) must hold float images in [0, 1],
        finite, of shape ``(batch,) + input_shape``: a NumPy array or tensor
        (checked in full before training, min/max slice by slice), a
        ``tf.data.Dataset`` (shape and dtype from its ``element_spec``
        before training; every batch's values as the pipeline produces it),
        a Python generator or a ``keras.utils.PyDataset`` (every batch, as it
        is produced). Data that breaks the contract -- pixels in 0..255, NaN,
        a wrong size -- raises a ``ValueError`` naming what was expected,
        before the first weight update. Labels are passed on unchecked
        (``fit(x, y)``, datasets of ``(x, y)`` pairs): the unconditional
        variants train on ``x`` alone and ignore them. A generator may yield
        ``x`` alone. ``batch_size``, ``epochs``, ``steps_per_epoch`` ... must be
        positive integers (Keras accepts 0 silently). The model's own
        :meth:`training_callbacks` (a KL warm-up) run before ``callbacks``.

        Args:
            check_data: ``False`` skips the data checks (the argument checks
                stay); ``None`` (default) follows ``model.check_data``
                (``True`` unless set). The checks cost under 1 % of a
                training epoch (``benchmarks/run.py --only data_checks``).

        The other arguments are those of ``keras.Model.fit``, in its order.
        """
        owner = f"{type(self).__name__}.fit"
        arguments = _arguments(super().fit, (x, y) + args, kwargs)
        checks.check_fit_arguments(owner, **{name: arguments[name] for name in _FIT_COUNTS})
        data_checks = self._data_checks(owner, check_data)
        if data_checks is not None:
            arguments["x"] = data_checks.inputs(arguments["x"], "x")
            arguments["validation_data"] = data_checks.validation(arguments["validation_data"])
        arguments["validation_data"] = self.prepare_validation_data(arguments["validation_data"])
        arguments["callbacks"] = self._with_own_callbacks(arguments["callbacks"])
        with data_check_errors(self, data_checks):
            return super().fit(**arguments)

    def _with_own_callbacks(self, callbacks):
        """The caller's callbacks after :meth:`training_callbacks` (those of a type the caller passes are not added)."""
        own = self.training_callbacks()
        if not own or isinstance(callbacks, keras.callbacks.CallbackList):
            return callbacks
        theirs = list(callbacks or [])
        return [cb for cb in own if not any(type(c) is type(cb) for c in theirs)] + theirs

    def prepare_validation_data(self, data):
        """``fit``'s ``validation_data`` as the model validates on it: as given by default (the DAE corrupts it)."""
        return data

    def training_callbacks(self):
        """Callbacks that :meth:`fit` adds to the caller's (a loss-weight schedule); none by default."""
        return []

    def evaluate(self, x=None, y=None, *args, check_data=None, **kwargs):
        """``keras.Model.evaluate``, with ``x`` checked as :meth:`fit` checks it (``check_data`` likewise)."""
        arguments = _arguments(super().evaluate, (x, y) + args, kwargs)
        if arguments.get("_use_cached_eval_dataset"):  # fit's validation pass: its data was checked by fit
            data_checks = None
        else:
            owner = f"{type(self).__name__}.evaluate"
            checks.check_optional_positive_int(owner, "batch_size", arguments["batch_size"])
            checks.check_optional_positive_int(owner, "steps", arguments["steps"])
            data_checks = self._data_checks(owner, check_data)
            if data_checks is not None:
                arguments["x"] = data_checks.inputs(arguments["x"], "x")
        with data_check_errors(self, data_checks):
            return super().evaluate(**arguments)

    def _data_checks(self, owner, check_data):
        enabled = self.check_data if check_data is None else check_data
        if not isinstance(enabled, (bool, np.bool_)):
            raise ValueError(f"{owner}: `check_data` must be True, False or None; received {check_data!r}.")
        return checked_data.TrainingData(self.image_shape, owner) if enabled else None
