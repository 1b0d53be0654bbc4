"""Fault injection for the training tests: end a run abruptly at a chosen step, or inside a backup write.

:class:`KillAfterSteps` is a Keras callback given to
:func:`keraszoo.training.fitting.fit_resumable` (``callbacks=[...]``) or
:func:`keraszoo.training.train.run` (``extra_callbacks=[...]``) as a function of
the run's backup; :func:`injected` adds it to every run started in its
``with`` block (in this process: a ``keraszoo train`` through
``keraszoo.cli.main`` included), and ``tests/support/train_killed.py`` does so
in a subprocess. Nothing in keraszoo itself knows about it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import keras

from keraszoo.training.backup import SAVE_PHASES


class SimulatedCrash(RuntimeError):
    """Raised by :class:`KillAfterSteps` in ``"raise"`` mode."""


class KillAfterSteps(keras.callbacks.Callback):
    """End the run abruptly once global step ``step`` is trained.

    ``mode="kill"`` sends SIGKILL to the process (nothing is cleaned up, like
    a preempted machine); ``mode="raise"`` raises :class:`SimulatedCrash`
    (an in-process stand-in). It reads the step counter of ``backup`` (the
    run's :class:`~keraszoo.training.backup.ResumableBackup`) and runs after
    it, so that a backup due at that step is written first.

    ``where="step"`` ends the run after the batch of ``step``; one of
    :data:`SAVE_PHASES` ends it in the middle of the backup of global step
    ``step``, right after that phase (a kill while a checkpoint is written).
    """

    def __init__(self, step: int, backup, mode: str = "kill", where: str = "step"):
        super().__init__()
        if mode not in ("kill", "raise"):
            raise ValueError(f"mode must be 'kill' or 'raise', got {mode!r}.")
        if where != "step" and where not in SAVE_PHASES:
            raise ValueError(f"where must be 'step' or one of {SAVE_PHASES}, got {where!r}.")
        self.step = int(step)
        self.backup = backup
        self.mode = mode
        self.where = where
        if where != "step":
            backup.save_hook = self._on_save_phase

    def _end(self, what):
        if self.mode == "raise":
            raise SimulatedCrash(f"simulated crash {what}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def _on_save_phase(self, phase, global_step):
        if phase == self.where and global_step == self.step:
            self._end(f"in the backup of global step {global_step}, after its {phase!r} phase")

    def on_train_batch_end(self, batch, logs=None):
        if self.where == "step" and self.backup.global_step >= self.step:
            self._end(f"after global step {self.backup.global_step}")


def kill_hook(spec: str):
    """``f(backup) -> KillAfterSteps`` from ``"STEP[@PHASE][:raise]"``.

    ``STEP``: SIGKILL after that global step; ``STEP:raise``: raise
    :class:`SimulatedCrash` instead; ``STEP@PHASE``: in the backup of that
    step, after ``PHASE`` (one of :data:`SAVE_PHASES`).
    """
    head, _, mode = str(spec).partition(":")
    step, _, where = head.partition("@")
    try:
        step, mode, where = int(step), mode or "kill", where or "step"
        KillAfterSteps(step, _NoBackup(), mode, where)  # checks the grammar now, not at the step
    except ValueError as err:
        raise ValueError(f"kill spec {spec!r}: expected STEP[@PHASE][:raise]; {err}") from None
    return lambda backup: KillAfterSteps(step, backup, mode, where)


class _NoBackup:
    save_hook = None
    global_step = 0


@contextlib.contextmanager
def injected(spec: str):
    """Every training run started in the block gets :func:`kill_hook` ``(spec)`` as an extra callback."""
    from keraszoo.training import fitting

    hook, real = kill_hook(spec), fitting.fit_resumable

    def fit_resumable(*args, callbacks=(), **kwargs):
        return real(*args, callbacks=[*callbacks, hook], **kwargs)

    fitting.fit_resumable = fit_resumable
    try:
        yield hook
    finally:
        fitting.fit_resumable = real
