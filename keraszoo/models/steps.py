"""Training steps: a variant's objective in one or more phases, one driver per Keras backend.

A :class:`Phase` is a loss, the variables it updates and the optimizer that
updates them. Most variants have one phase (``total_loss`` over every trainable
variable, :meth:`BaseAutoEncoder.training_phases`); the adversarial
autoencoder has three (reconstruction, discriminator, regularization), each
with its own optimizer, run one after the other so that each phase sees the
weights the previous one updated.

Drivers:

* **TensorFlow**: one ``tf.GradientTape`` per phase. keraszoo uses its own
  step rather than Keras' default one because the default computes
  ``y_pred = model(x, training=True)`` before ``compute_loss``; the
  autoencoders' objectives run their own forward pass (sampling ``z``, adding
  noise, ...), so that pass was wasted work (about 4 % of a conv VAE step on
  the development CPU, see ``benchmarks/``).
* **JAX**: single-phase models keep Keras' own stateless step (XLA removes the
  unused forward pass, and the step carries Keras' distribution support);
  multi-phase models, and models that ``requires_labels``, use :func:`jax_train_step`, a stateless step in the style
  of Keras' "custom train step in JAX" guide: each phase's loss is
  differentiated with ``jax.value_and_grad`` inside a ``StatelessScope`` and
  applied with the phase optimizer's ``stateless_apply``. The JAX training
  state holds the variables of every phase optimizer
  (:meth:`PhasedTrainingMixin._get_jax_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import keras
from keras import ops

from keraszoo.models.backend import replica_scale


class Phase(NamedTuple):
    """One gradient step of a training step.

    ``objective(x)`` (``objective(x, y)`` for a model that ``requires_labels``) returns ``(loss, terms)``: the scalar to minimise
    (unscaled: the drivers apply the replica and loss scaling) and a dict of
    the loss terms it computed, reported as metrics. A ``"loss"`` entry, when
    present, is what Keras' own ``loss`` metric shows (default: ``total_loss``).
    """

    name: str
    objective: Callable
    variables: list
    optimizer: object


def _objective_inputs(model, data):
    """``(x, extra)``: the checked images and the objective's other arguments, ``(y,)`` for a model that
    ``requires_labels`` (a conditional variant's objective takes the labels), else none."""
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    return model._check_inputs(x), ((y,) if model.requires_labels else ())


def _record(model, terms, x):
    """Updates the loss-term trackers and Keras' ``loss`` metric; returns the logs."""
    terms = model.combine_phase_terms(dict(terms))
    loss = terms.pop("loss", terms["total_loss"])
    batch = keras.ops.cast(keras.ops.shape(x)[0], "float32")
    model._update_trackers(terms, x)
    model._loss_tracker.update_state(loss, sample_weight=batch)


def tensorflow_train_step(model, data):
    """The phases with one ``tf.GradientTape`` each (graph mode inside ``fit``)."""
    import tensorflow as tf

    x, extra = _objective_inputs(model, data)
    scale = replica_scale()
    terms = {}
    for phase in model.training_phases():
        with tf.GradientTape() as tape:
            loss, phase_terms = phase.objective(x, *extra)
            scaled = phase.optimizer.scale_loss(loss * scale)
        grads = tape.gradient(scaled, phase.variables)
        phase.optimizer.apply(grads, phase.variables)
        terms.update(phase_terms)
    _record(model, terms, x)
    return model.get_metrics_result()


def _current_values(scope, variables, previous):
    out = []
    for variable, old in zip(variables, previous):
        new = scope.get_current_value(variable)
        out.append(old if new is None else new)
    return out


def jax_train_step(model, state, data):
    """A stateless step over the phases: ``(state, data) -> (logs, state)``."""
    import jax

    trainable, non_trainable, optimizer_values, metrics_values = (list(s) for s in state)
    x, extra = _objective_inputs(model, data)
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    offsets = model._optimizer_offsets()
    terms = {}
    for phase in model.training_phases():
        indices = [position[id(v)] for v in phase.variables]
        lo, hi = offsets[id(phase.optimizer)]

        def objective(values, phase=phase, indices=indices, lo=lo, hi=hi, non_trainable=non_trainable):
            current = list(trainable)
            for i, value in zip(indices, values):
                current[i] = value
            mapping = (list(zip(model.trainable_variables, current))
                       + list(zip(model.non_trainable_variables, non_trainable))
                       + list(zip(phase.optimizer.variables, optimizer_values[lo:hi])))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss, phase_terms = phase.objective(x, *extra)
                scaled = phase.optimizer.scale_loss(loss)
            return scaled, (phase_terms, _current_values(scope, model.non_trainable_variables, non_trainable))

        grad_fn = jax.value_and_grad(objective, has_aux=True)
        (_, (phase_terms, non_trainable)), grads = grad_fn([trainable[i] for i in indices])
        new_values, optimizer_values[lo:hi] = phase.optimizer.stateless_apply(
            optimizer_values[lo:hi], grads, [trainable[i] for i in indices])
        for i, value in zip(indices, new_values):
            trainable[i] = value
        terms.update(phase_terms)

    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_values))) as scope:
        _record(model, terms, x)
        logs = model.get_metrics_result()
    metrics_values = _current_values(scope, model.metrics_variables, metrics_values)
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


class PhasedTrainingMixin:
    """``train_step`` through :func:`training_phases` on every backend.

    Mixed into ``keras.Model`` subclasses (``BaseAutoEncoder``), whose ``loss_terms`` give the
    objective: ``compile`` (a default optimizer), the default single phase, ``compute_loss`` (for
    Keras' own step) and the loss-term metrics (``loss_trackers``) are here. Also keeps the
    variables of every phase optimizer, not only ``model.optimizer``'s, in the
    JAX backend's training state, so that ``fit`` carries and writes back all
    of them (Keras' JAX trainer knows one optimizer).
    """

    def compile(self, optimizer=None, **kwargs):
        """Like ``keras.Model.compile``; the default optimizer is Adam(1e-3).

        No ``loss`` is needed: the variant's own loss terms are used.
        """
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, **kwargs)

    def training_phases(self):
        """The :class:`~keraszoo.models.steps.Phase` s of one training step.

        One phase by default: ``total_loss`` (plus any ``self.losses`` of user
        networks) over every trainable variable, with ``self.optimizer``.
        """
        return (Phase("total", self._training_objective, self.trainable_variables, self.optimizer),)

    def _training_objective(self, x):
        terms = dict(self.loss_terms(x, training=True))
        loss = terms["total_loss"]
        if self.losses:
            loss = loss + ops.sum(self.losses)
        terms["loss"] = loss
        return loss, terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The variant's ``total_loss``; updates one metric per loss term.

        ``sample_weight`` is ignored, and so is ``y`` (labels; the target is ``x``)
        unless the variant's :meth:`step_terms` reads it.
        """
        del y_pred, sample_weight
        terms = self.step_terms(x, y, training)
        self._update_trackers(terms, x)
        total = terms["total_loss"]
        if self.losses:
            total = total + ops.sum(self.losses)
        return total * replica_scale()

    def step_terms(self, x, y, training):
        """The loss terms of a Keras step on ``(x, y)``: ``loss_terms(x)``, ``y`` ignored (a variant that reads
        its ``y``, as the DAE its clean target in ``evaluate(x_noisy, x_clean)``, overrides this)."""
        del y
        return self.loss_terms(x, training=training)

    def _update_trackers(self, terms, x):
        # Weighted by the batch size, like Keras' own ``loss`` metric, so that
        # an epoch's ``loss`` and ``total_loss`` agree when the last batch is short.
        batch = ops.cast(ops.shape(x)[0], "float32")
        for tracker in self.loss_trackers:
            tracker.update_state(terms[tracker.name], sample_weight=batch)

    def combine_phase_terms(self, terms):
        """The step's reported terms from those of its phases (adds ``total_loss`` where phases split it)."""
        return terms

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            return tensorflow_train_step(self, *args)
        if len(self.training_phases()) == 1 and not self.requires_labels:
            return super().train_step(*args)  # Keras' own step: it calls the model on x alone (no labels)
        if backend == "jax":
            return jax_train_step(self, *args)
        raise NotImplementedError(
            f"{type(self).__name__} trains in {len(self.training_phases())} phases with their own optimizers; "
            f"keraszoo has training steps for that on the TensorFlow and JAX backends, not on {backend!r} "
            "(the model itself runs on every backend for inference).")

    # -------------------------------------------------- optimizers of the phases
    def _phase_optimizers(self):
        """The distinct optimizers of the phases, ``self.optimizer`` first."""
        optimizers = [self.optimizer]
        for phase in self.training_phases():
            if all(phase.optimizer is not o for o in optimizers):
                optimizers.append(phase.optimizer)
        return optimizers

    def _optimizer_offsets(self):
        """``{id(optimizer): (start, stop)}`` in the concatenated optimizer variables."""
        offsets, start = {}, 0
        for optimizer in self._phase_optimizers():
            stop = start + len(optimizer.variables)
            offsets[id(optimizer)] = (start, stop)
            start = stop
        return offsets

    def _extra_optimizer_variables(self):
        return [v for optimizer in self._phase_optimizers()[1:] for v in optimizer.variables]

    def _get_jax_state(self, trainable_variables=False, non_trainable_variables=False,
                       optimizer_variables=False, metrics_variables=False, purge_model_variables=False):
        state = list(super()._get_jax_state(
            trainable_variables=trainable_variables, non_trainable_variables=non_trainable_variables,
            optimizer_variables=optimizer_variables, metrics_variables=metrics_variables,
            purge_model_variables=purge_model_variables))
        extra = self._extra_optimizer_variables() if optimizer_variables else []
        if extra:
            index = int(bool(trainable_variables)) + int(bool(non_trainable_variables))
            state[index] = list(state[index]) + [v.value for v in extra]
        return tuple(state)

    def jax_state_sync(self):
        state = getattr(self, "_jax_state", None)
        values = (state or {}).get("optimizer_variables") if not getattr(self, "_jax_state_synced", True) else None
        # Keras assigns ``self.optimizer.variables`` from the front of the list
        # (they come first); the phase optimizers' follow.
        super().jax_state_sync()
        if values:
            start = len(self.optimizer.variables)
            for variable, value in zip(self._extra_optimizer_variables(), values[start:]):
                variable.assign(value)
