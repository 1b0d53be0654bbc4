"""Faults in training (issue 11, part 4): kills, NaN, full disks and damaged backups, each proven by a run.

Every fault is injected into a real training run (``keraszoo train`` on 256
MNIST digits, a tiny model) or into the backup callback itself, and the
suite checks what the user gets: one clear error line, the last good state
kept, and -- after running the same command again -- exactly (bitwise) the
weights, optimizer state, training log and metrics of an uninterrupted run.

Faults, and how many of each (fast = the default suite, slow = ``--runslow``):

1. Kills -- 12 real SIGKILLs (``os.kill``, subprocesses; slow) and 2
   in-process crashes (fast):

   * one run killed at 10 seeded random points (:data:`KILL_SEED`), each
     restart killed at the next point: 3 at plain steps, 2 at epoch
     boundaries (drawn from: after the epoch's last batch, inside the
     epoch's backup, after it)
     and 5 *inside a checkpoint write*, one after each of
     ``callbacks.SAVE_PHASES`` (weights written / state written / folder
     renamed / pointer updated / old backup pruned); the 11th run finishes;
   * 2 independent kills: before the first backup, and in the middle of the
     final ``save_pretrained`` folder (its weights written, no metadata.json);
   * in-process (``STEP@PHASE:raise``): 2 crashes inside backups (after the
     weights file; after the rename, across an epoch boundary), resumed to
     the uninterrupted weights.

2. NaN/Inf -- 3: a diverging learning rate (``--lr 1e6``, through the CLI:
   exit 1, one line), NaN in a later batch of a ``tf.data`` stream (Python
   API: :class:`TrainingDivergedError` names epoch 2, step 5), and NaN
   weights after a finite loss (the backup refuses them). The run stops at
   once (no NaN rows for the remaining epochs), the last good backup stays
   loadable and finite, no model folder is written (no ``metadata.json``:
   ``keraszoo.load`` refuses the folder).

3. Full disk -- 6: ``OSError(ENOSPC)`` injected half-way through a backup's
   weights file and into the final ``model.keras`` (both through the CLI),
   into the pointer's update (after the new folder got its name), a disk
   already full before a backup (caught before anything is written), and a
   real ``RLIMIT_FSIZE`` (SIGXFSZ ignored) in a subprocess, set during a run
   and before the final folder (slow; both writes see the limit in their size
   check, before HDF5 writes a byte: a failed HDF5 write can crash the
   process at exit). The run stops with one
   line naming the file and the disk, the previous backup stays the
   pointer's target, no partial file or folder is left as the latest, and
   rerunning the command resumes to the uninterrupted result.

4. Damaged backup files -- 4 files corrupted or lost: a truncated
   ``model.weights.h5`` (clear :class:`BackupDamagedError`), a garbage
   ``latest.json`` and a missing one (the complete ``step-*`` folder is used),
   a garbage ``state.json`` with nothing else (clear error, no silent restart).

5. An interrupted experiment sweep: not tested -- the experiment runner does
   not exist yet.
"""

import errno
import json
import random
import re
import signal

import keras
import numpy as np
import pytest

import keraszoo
from keraszoo.errors import BackupDamagedError
from keraszoo.errors import CheckpointWriteError
from keraszoo.errors import TrainingDivergedError
from keraszoo.training import backup as bk
from keraszoo.training import runtime
from keraszoo.training.fitting import RUN_FILES
from keraszoo.training.fitting import fit_resumable
from tests.support import faults
from tests.training.helpers import archive_weights_of
from tests.training.helpers import assert_same_archive
from tests.training.helpers import assert_same_weights
from tests.training.helpers import base_args
from tests.training.helpers import cli_error
from tests.training.helpers import keraszoo_lines
from tests.training.helpers import log_rows
from tests.training.helpers import run_script
from tests.training.helpers import train_cli
from tests.training.helpers import train_in_process

#: A VAE (sampling noise) on dynamically binarized digits: every random stream must survive a kill.
#: 256 images / 32 = 8 steps per epoch; a backup every 3 steps and at each epoch's end.
RUN_ARGS = {"--model": "vae", "--binarize": "dynamic", "--no-eval": "", "--backup-every": 3,
            "--steps-per-execution": 1}
STEPS = 8

#: Seed of the 10 kill points of the SIGKILL chain.
KILL_SEED = 20260611


def _backup_steps(epochs):
    total = epochs * STEPS
    return sorted({s for s in range(3, total + 1, 3)} | {e * STEPS for e in range(1, epochs + 1)})


def _state(out):
    path = out / "train_state" / "backup" / "latest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _restore_backup(out, model_kwargs, *, lr=1e-3):
    """A fresh model restored from ``out``'s backup; ``(model, global step)``."""
    from keraszoo.models import get_variant

    backup_dir = out / "train_state" / "backup"
    state = json.loads((backup_dir / "latest.json").read_text())
    folder = backup_dir / state["dir"]
    full = json.loads((folder / "state.json").read_text())
    variant, kwargs = model_kwargs
    model = get_variant(variant)(input_shape=(28, 28, 1), **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr))
    backup = bk.ResumableBackup(backup_dir, steps_per_epoch=full["steps_per_epoch"], fingerprint=full["fingerprint"])
    return model, backup.restore(model)


def _assert_same_outputs(reference, out, *, epochs):
    """``out`` is the complete, loadable result of an uninterrupted run (``reference``), bitwise."""
    assert_same_weights(reference, out)
    assert_same_archive(reference, out)  # the optimizer's slots too
    assert int(archive_weights_of(out)["optimizer/vars/0"]) == epochs * STEPS  # its step counter
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == [str(e) for e in range(epochs)]  # complete, no duplicates
    assert rows == log_rows(reference)  # and the very losses of the uninterrupted epochs
    meta, ref_meta = (json.loads((f / "metadata.json").read_text()) for f in (out, reference))
    assert meta["metrics"] == ref_meta["metrics"] and meta["metrics"]
    keraszoo.load(str(out))  # every file matches metadata.json's digests
    assert not (out / "train_state" / "backup").exists()
    return meta


def _reference(tmp_path_factory, data_dir, epochs):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert train_cli(base_args(data_dir, **RUN_ARGS, **{"--epochs": epochs, "--out": out})) == 0
    return out


@pytest.fixture(scope="module")
def reference2(tmp_path_factory, tiny_mnist_dir):
    """An uninterrupted 2-epoch run (16 steps)."""
    return _reference(tmp_path_factory, tiny_mnist_dir, 2)


@pytest.fixture(scope="module")
def reference3(tmp_path_factory, tiny_mnist_dir):
    """An uninterrupted 3-epoch run (24 steps), for the subprocess tests."""
    return _reference(tmp_path_factory, tiny_mnist_dir, 3)


# ============================================================== 1. kills


def kill_points(seed=KILL_SEED, epochs=3):
    """10 ``(global step, where)`` kill points, in increasing steps, drawn with ``seed``.

    ``where`` is ``"step"`` (after that step's batch) or one of ``SAVE_PHASES``
    (inside the backup written at that step): 3 plain steps, 2 epoch
    boundaries, 5 checkpoint writes (one per phase).
    """
    rng = random.Random(seed)
    total = epochs * STEPS
    backups = _backup_steps(epochs)
    boundaries = [e * STEPS for e in range(1, epochs + 1)]
    points = list(zip(sorted(rng.sample(boundaries, 2)), rng.sample(["step", "weights", "saved"], 2)))
    mid = [s for s in backups if s not in boundaries]
    phases = list(bk.SAVE_PHASES)
    rng.shuffle(phases)
    points += list(zip(rng.sample(mid, 5), phases))
    plain = [s for s in range(1, total) if s not in backups]
    points += [(s, "step") for s in rng.sample(plain, 3)]
    return sorted(points)


def expected_backup(step, where, epochs=3):
    """The global step ``latest.json`` names after a kill at ``(step, where)`` (0: no backup)."""
    if where in ("pointer", "saved"):
        return step
    backups = _backup_steps(epochs)
    # "step": the batch-end backup of that step (not an epoch's end) is written before the kill
    inclusive = where == "step" and step in backups and step % STEPS
    return max([b for b in backups if b < step or (inclusive and b == step)], default=0)


def test_the_kill_points_cover_steps_epoch_boundaries_and_every_phase_of_a_checkpoint_write():
    points = kill_points()
    assert points == kill_points() and len(points) == 10  # seeded: the same 10 points every run
    steps = [s for s, _ in points]
    assert steps == sorted(set(steps))  # each restart is killed further on
    assert sum(s % STEPS == 0 for s in steps) == 2
    assert {w for _, w in points} >= set(bk.SAVE_PHASES)
    assert sum(w == "step" and s % STEPS != 0 for s, w in points) == 3
    assert expected_backup(8, "step") == 6 and expected_backup(9, "step") == 9
    assert expected_backup(12, "weights") == 9 and expected_backup(12, "pointer") == 12


def test_kill_hook_grammar():
    backup = bk.ResumableBackup("unused", steps_per_epoch=4)
    hook = faults.kill_hook("12@renamed:raise")(backup)
    assert (hook.step, hook.where, hook.mode) == (12, "renamed", "raise") and backup.save_hook is not None
    backup.global_step = 12
    hook.on_train_batch_end(0)  # a phase hook does not fire after a batch
    backup.save_hook("weights", 12)  # nor at another phase ...
    backup.save_hook("renamed", 11)  # ... or another step
    with pytest.raises(faults.SimulatedCrash, match="backup of global step 12, after its 'renamed'"):
        backup.save_hook("renamed", 12)
    with pytest.raises(ValueError, match="STEP\\[@PHASE\\]\\[:raise\\].*weights"):
        faults.kill_hook("3@nowhere")


def test_crashes_inside_backups_and_at_an_epoch_boundary_resume_to_the_uninterrupted_run(
        tiny_mnist_dir, tmp_path, monkeypatch, reference2):
    """In-process (``:raise``) version of the SIGKILL chain below."""
    out = tmp_path / "crashed"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 2, "--out": out})
    backup = out / "train_state" / "backup"
    # (point, the backup latest.json names afterwards, what else is on disk)
    for spec, expected in (("6@weights", 3), ("12@renamed", 9)):
        with faults.injected(spec + ":raise"), pytest.raises(faults.SimulatedCrash):
            train_in_process(argv)
        assert _state(out)["global_step"] == expected, spec
        assert not (out / "metadata.json").exists()
    assert (backup / "step-0000000012" / "state.json").is_file()  # complete, but not (yet) the pointer's
    assert not (backup / ".step-0000000006.tmp").exists()  # redone by the next run's backup of step 6
    # the second run went through the end of epoch 1 (step 8): its row is logged once, not twice
    assert [r["epoch"] for r in log_rows(out)] == ["0"]
    assert train_cli(argv) == 0
    meta = _assert_same_outputs(reference2, out, epochs=2)
    assert meta["recipe"]["resumed_from_step"] == 9


def _kill_spec(step, where):
    return str(step) if where == "step" else f"{step}@{where}"


@pytest.mark.slow
def test_sigkill_at_ten_random_points_then_resume_gives_exactly_the_uninterrupted_run(
        tiny_mnist_dir, tmp_path, reference3):
    out = tmp_path / "killed"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 3, "--out": out})
    backup = out / "train_state" / "backup"
    resumed_from = 0
    for step, where in kill_points():
        spec = _kill_spec(step, where)
        res = run_script(argv, kill=spec)
        assert res.returncode == -signal.SIGKILL, (spec, res.stderr[-3000:])
        if resumed_from:
            assert f"(global step {resumed_from})" in res.stderr, spec
        expected = expected_backup(step, where)
        state = _state(out)
        assert (state or {}).get("global_step", 0) == expected, spec
        if expected:
            assert (backup / state["dir"] / "state.json").is_file() and (backup / state["dir"] / "model.weights.h5").is_file()
        if where in ("weights", "state"):  # the interrupted backup is a hidden temporary folder, never the latest
            assert (backup / f".step-{step:010d}.tmp").is_dir(), spec
        if where == "renamed":  # complete under its final name; the pointer still names the previous one
            assert (backup / f"step-{step:010d}" / "state.json").is_file(), spec
        assert not (out / "metadata.json").exists()
        resumed_from = expected
    final = run_script(argv)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"(global step {resumed_from})" in final.stderr
    meta = _assert_same_outputs(reference3, out, epochs=3)
    assert meta["recipe"]["resumed_from_step"] == resumed_from


#: Run before the command in the subprocess: SIGKILL in the middle of the final save_pretrained folder
#: (config.json, model.weights.h5 and model.keras written; README.md and metadata.json not).
KILL_IN_SAVE_PRETRAINED = """
import os, signal
import keraszoo.weights.publish as publish
def _killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
publish.render_model_card = _killed
"""


@pytest.mark.slow
def test_independent_kills_before_the_first_backup_and_inside_the_final_folder(tiny_mnist_dir, tmp_path, reference3):
    # before any backup: the rerun starts over (and ends the same)
    out = tmp_path / "early"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 3, "--out": out})
    res = run_script(argv, kill="2")
    assert res.returncode == -signal.SIGKILL and _state(out) is None
    res = run_script(argv)
    assert res.returncode == 0 and "Resuming" not in res.stderr, res.stderr[-3000:]
    _assert_same_outputs(reference3, out, epochs=3)

    # in the middle of save_pretrained: a folder with weights but no metadata.json is not a model
    out = tmp_path / "saving"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 3, "--out": out})
    res = run_script(argv, prelude=KILL_IN_SAVE_PRETRAINED)
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert (out / "model.weights.h5").is_file() and not (out / "metadata.json").exists()
    with pytest.raises(ValueError, match="no metadata.json"):
        keraszoo.load(str(out))
    assert _state(out)["global_step"] == 3 * STEPS  # the finished training is backed up
    res = run_script(argv)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "The backup holds the finished training (global step 24)" in res.stderr
    meta = _assert_same_outputs(reference3, out, epochs=3)
    assert meta["recipe"]["resumed_from_step"] == 24


# ============================================================== 2. NaN / Inf


def _one_error(argv, capfd):
    """``keraszoo train ARGV`` fails with exit status 1 and one line on stderr (no traceback); that line."""
    code, lines = cli_error(["train", *argv], capfd)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("keraszoo: error: "), (code, lines)
    return lines[0]


def test_a_diverging_learning_rate_stops_the_run_with_one_clear_line(tiny_mnist_dir, tmp_path, capfd):
    out = tmp_path / "out"
    argv = base_args(tiny_mnist_dir, **{"--model": "ae", "--no-eval": "", "--lr": "1e6", "--epochs": 3,
                                        "--backup-every": 1, "--steps-per-execution": 1, "--out": out})
    message = _one_error(argv, capfd)
    found = re.search(r"loss became (NaN|Inf) at epoch 1, step (\d+) \(global step (\d+)\); training stopped",
                      message)
    assert found, message
    bad = int(found.group(3))
    assert "Try a lower learning rate (--lr, now 1e+06) and check the data for NaN/Inf values" in message
    # stopped at once: one (NaN) row, not NaN rows for the remaining epochs
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == ["0"] and rows[0]["loss"] in ("nan", "inf")
    # no folder claims success
    assert not any((out / name).exists() for name in RUN_FILES)
    with pytest.raises(ValueError, match="no metadata.json"):
        keraszoo.load(str(out))
    # the last good backup is intact, finite and loadable
    state = _state(out)
    assert 0 < state["global_step"] < bad
    assert f"last good backup (global step {state['global_step']}, finite weights)" in message
    model, step = _restore_backup(out, ("ae", {"latent_dim": 4, "hidden_dims": (32,), "seed": 0}), lr=1e6)
    assert step == state["global_step"] and bk.weights_are_finite(model)
    assert int(model.optimizer.iterations.numpy()) == step


def test_nan_in_a_later_batch_stops_at_that_step_and_keeps_the_backup_before_it(tmp_path):
    import tensorflow as tf

    from keraszoo.data import EpochStream
    from keraszoo.models import AutoEncoder

    class PoisonedStream(EpochStream):
        """An EpochStream whose batch of global step ``bad_step`` (1-based) is NaN (past any first-batch check)."""

        def __init__(self, x, *, bad_step, **kwargs):
            super().__init__(x, **kwargs)
            self.bad_step = bad_step

        def _epoch_batches(self, epoch, start_step):
            ds = super()._epoch_batches(epoch, start_step).enumerate(start=start_step)
            base = tf.cast(epoch, tf.int64) * self.steps_per_epoch
            bad = tf.constant(self.bad_step, tf.int64)
            return ds.map(lambda i, xb: tf.where(base + i + 1 == bad, tf.fill(tf.shape(xb), np.nan), xb))

    x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    stream = PoisonedStream(x, batch_size=8, seed=0, bad_step=13)  # epoch 2, step 5
    model = AutoEncoder(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=1)
    model.check_data = False  # fit's own data checks would refuse the NaN batch: let it reach the loss
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(TrainingDivergedError) as caught:
        fit_resumable(model, stream, epochs=4, out_dir=out, work_dir=tmp_path / "work", fingerprint={"test": 1},
                      distribution=runtime.Distribution("default"), backup_every=4, verbose=0)
    err = caught.value
    assert (err.epoch, err.step, err.global_step, err.backup_step) == (2, 5, 13, 12)
    assert "became NaN at epoch 2, step 5 (global step 13)" in str(err) and "(--lr, now 0.001)" in str(err)
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[0]["loss"] != "nan" and rows[1]["loss"] == "nan"
    fresh = AutoEncoder(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(8,), seed=0)
    fresh.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert bk.ResumableBackup(tmp_path / "work" / "backup", steps_per_epoch=8, fingerprint={"test": 1}).restore(fresh) == 12
    assert bk.weights_are_finite(fresh) and int(fresh.optimizer.iterations.numpy()) == 12


def _tiny_model():
    from keraszoo.models import VAE

    model = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile()
    model.optimizer.build(model.trainable_variables)  # as after a training step: its slots are backed up
    return model


def test_the_backup_refuses_nan_weights_even_after_a_finite_loss(tmp_path):
    model = _tiny_model()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4)
    backup.set_model(model)
    backup.global_step = 4
    backup._save({"loss": 1.0})
    weight = model.trainable_variables[0]
    weight.assign(np.full(weight.shape, np.nan, dtype="float32"))  # the update after a finite loss blew up
    backup.global_step = 8
    backup._save({"loss": 2.0})
    assert backup.latest()["global_step"] == 4


# ============================================================== 3. full disk


def _partial_then(code):
    """A write that leaves half a file behind, then fails with ``OSError(code)``."""
    def fail(filepath):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
        raise OSError(code, "injected")
    return fail


def test_a_full_disk_during_a_backup_keeps_the_previous_backup(tiny_mnist_dir, tmp_path, monkeypatch, reference2,
                                                               capfd):
    out = tmp_path / "out"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 2, "--out": out})
    real, backups = bk.write_file, []

    def write_file(path, data):  # where a backup's bytes reach the disk
        if str(path).endswith("model.weights.h5"):
            backups.append(path)
            if len(backups) == 3:  # the third backup: the end of epoch 1 (step 8); the disk fills up half-way
                real(path, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "injected")
        return real(path, data)

    monkeypatch.setattr(bk, "write_file", write_file)
    message = _one_error(argv, capfd)
    backup = out / "train_state" / "backup"
    assert f"Could not write the training backup {backup}/.step-0000000008.tmp/model.weights.h5" in message
    assert "No space left on device (the disk is full:" in message and " free of " in message
    assert f"The previous backup (global step 6) in {backup} is intact" in message
    assert sorted(p.name for p in backup.iterdir()) == ["latest.json", "step-0000000006"]  # no partial backup
    assert _state(out)["global_step"] == 6 and not (out / "metadata.json").exists()
    model, step = _restore_backup(out, ("vae", {"latent_dim": 4, "hidden_dims": (32,), "seed": 0}))
    assert step == 6 and int(model.optimizer.iterations.numpy()) == 6
    monkeypatch.undo()
    assert train_cli(argv) == 0  # space freed: the same command resumes
    _assert_same_outputs(reference2, out, epochs=2)


def test_a_full_disk_while_writing_the_model_leaves_no_folder_that_looks_complete(
        tiny_mnist_dir, tmp_path, monkeypatch, reference2, capfd):
    out = tmp_path / "out"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 2, "--out": out})
    monkeypatch.setattr(keras.Model, "save", lambda self, filepath, *a, **k: _partial_then(errno.ENOSPC)(filepath))
    message = _one_error(argv, capfd)
    assert f"Could not write the trained model to {out}" in message and "the disk is full" in message
    assert "no metadata.json" in message and "without retraining" in message
    assert not any((out / name).exists() for name in RUN_FILES)  # partial model.keras removed too
    assert not list(out.glob(".*.tmp"))
    assert [r["epoch"] for r in log_rows(out)] == ["0", "1"]  # the log is kept ...
    assert _state(out)["global_step"] == 2 * STEPS  # ... and the finished training's backup
    monkeypatch.undo()
    capfd.readouterr()
    assert train_cli(argv) == 0
    assert "The backup holds the finished training (global step 16): writing the model." in capfd.readouterr().err
    meta = _assert_same_outputs(reference2, out, epochs=2)
    assert meta["recipe"]["resumed_from_step"] == 16


#: Subprocess prelude: SIGXFSZ ignored, so a write past RLIMIT_FSIZE fails with EFBIG instead of killing.
_RLIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
def _limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
"""

#: ... from the first backup after step 6 on, no file may grow beyond 4 KB (a backup's weights are ~300 KB).
LIMIT_AFTER_STEP_6 = _RLIMIT + """
from keraszoo.training import backup as _bk
_real_save = _bk.ResumableBackup._save
def _save(self, logs=None):
    _real_save(self, logs)
    if self._last_saved >= 6:
        _limit()
_bk.ResumableBackup._save = _save
"""

#: ... once training is done, while the final folder is written.
LIMIT_WHILE_SAVING = _RLIMIT + """
from keraszoo.training import fitting as _fitting
_real_save_run = _fitting.save_run
def _save_run(*args, **kwargs):
    _limit()
    return _real_save_run(*args, **kwargs)
_fitting.save_run = _save_run
"""


def _one_line(stderr):
    lines = keraszoo_lines(stderr)
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_a_file_size_limit_during_a_backup_keeps_the_previous_backup(tiny_mnist_dir, tmp_path, reference3):
    out = tmp_path / "out"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 3, "--out": out})
    res = run_script(argv, prelude=LIMIT_AFTER_STEP_6)
    assert res.returncode == 1, res.stderr[-3000:]
    line = _one_line(res.stderr)
    backup = out / "train_state" / "backup"
    assert line.startswith(f"keraszoo: error: Could not write the training backup {backup}/.step-0000000008.tmp/model.weights.h5: "
                           "File too large (a file-size limit (ulimit -f)"), line
    assert "The previous backup (global step 6)" in line
    assert sorted(p.name for p in backup.iterdir()) == ["latest.json", "step-0000000006"]
    model, step = _restore_backup(out, ("vae", {"latent_dim": 4, "hidden_dims": (32,), "seed": 0}))
    assert step == 6 and bk.weights_are_finite(model)
    res = run_script(argv)
    assert res.returncode == 0 and "(global step 6)" in res.stderr, res.stderr[-3000:]
    _assert_same_outputs(reference3, out, epochs=3)


@pytest.mark.slow
def test_a_file_size_limit_while_writing_the_model_leaves_no_folder_that_looks_complete(
        tiny_mnist_dir, tmp_path, reference3):
    out = tmp_path / "out"
    argv = base_args(tiny_mnist_dir, **RUN_ARGS, **{"--epochs": 3, "--out": out})
    res = run_script(argv, prelude=LIMIT_WHILE_SAVING)
    assert res.returncode == 1, res.stderr[-3000:]
    line = _one_line(res.stderr)
    assert line.startswith(f"keraszoo: error: Could not write the trained model to {out}"), line
    assert "File too large" in line
    assert not any((out / name).exists() for name in RUN_FILES) and not list(out.glob(".*.tmp"))
    assert _state(out)["global_step"] == 24
    res = run_script(argv)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_same_outputs(reference3, out, epochs=3)


def test_backup_write_errors_are_reported_once_with_the_path_and_the_disk(tmp_path, monkeypatch):
    model = _tiny_model()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4)
    backup.set_model(model)
    backup.global_step = 4
    backup._save({"loss": 1.0})
    backup.global_step = 8
    def full(path, text, **kwargs):
        raise OSError(errno.ENOSPC, "injected")

    monkeypatch.setattr(bk, "atomic_write_text", full)
    with pytest.raises(CheckpointWriteError) as caught:  # the pointer's write fails, after the rename
        backup._save({"loss": 1.0})
    err = caught.value
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC and err.filename.endswith("latest.json")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["latest.json", "step-0000000004"]
    assert backup.latest()["global_step"] == 4


def test_a_disk_already_full_is_caught_before_a_backup_writes_anything(tmp_path, monkeypatch):
    import collections

    model = _tiny_model()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4)
    backup.set_model(model)
    backup.global_step = 4
    backup._save({"loss": 1.0})
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(bk.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))  # 100 bytes free
    backup.global_step = 8
    with pytest.raises(CheckpointWriteError, match=r"step-0000000008\.tmp/model\.weights\.h5: No space left on device "
                                                    r"\(the disk is full: 100 B free of 1\.0 GB\)\. The previous backup "
                                                    r"\(global step 4\)"):
        backup._save({"loss": 1.0})
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["latest.json", "step-0000000004"]


# ============================================================== 4. damaged backup files


def _two_backups(tmp_path):
    model = _tiny_model()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4)
    backup.set_model(model)
    backup.global_step = 4
    backup._save({"loss": 1.0})
    return model, backup


def test_a_truncated_backup_is_a_clear_error_not_a_traceback(tmp_path):
    _, backup = _two_backups(tmp_path)
    weights = tmp_path / "b" / "step-0000000004" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(BackupDamagedError, match=f"The training backup {weights} cannot be read .*Delete "):
        bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4).restore(_tiny_model())


def test_a_damaged_or_missing_pointer_falls_back_to_the_complete_backup_folder(tmp_path):
    _, backup = _two_backups(tmp_path)
    pointer = tmp_path / "b" / "latest.json"
    pointer.write_text("{not json")
    assert bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4).restore(_tiny_model()) == 4
    pointer.unlink()  # e.g. killed after the first backup's folder got its name, before the pointer
    assert bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4).restore(_tiny_model()) == 4
    (tmp_path / "b" / "step-0000000004" / "state.json").write_text("garbage")
    with pytest.raises(BackupDamagedError, match="is damaged .*Delete that folder"):
        bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4).restore(_tiny_model())
