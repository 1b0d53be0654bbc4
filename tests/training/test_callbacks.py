"""keraszoo.training.callbacks, fitting helpers, runtime choices and hyperparameter parsing."""

import json

import numpy as np
import pytest

from keraszoo import errors
from keraszoo.training import backup as bk
from keraszoo.training import callbacks as cb
from keraszoo.training import fitting
from keraszoo.training import recipe
from keraszoo.training import runtime
from tests.support import faults


def _tiny_vae(seed=0):
    from keraszoo.models import VAE

    model = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(8,), seed=seed)
    model.compile()
    return model


def test_backup_counts_global_steps_with_steps_per_execution(tmp_path):
    model = _tiny_vae()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=8, save_freq=3)
    backup.set_model(model)
    saved = []
    backup._save = lambda logs=None: saved.append(backup.global_step) or setattr(
        backup, "_last_saved", backup.global_step)
    backup.on_epoch_begin(0)
    for batch in (2, 5, 8):  # 3 steps per execution: Keras reports batch 8 of an 8-step epoch
        backup.on_train_batch_end(batch)
    assert backup.global_step == 8  # clamped to the epoch's end
    backup.on_epoch_end(0)
    assert saved == [3, 6, 8]  # every 3 steps, and at the epoch end
    # a resumed run starting mid-epoch (global step 10 = epoch 1, step 2)
    backup.begin_segment(10)
    backup.on_epoch_begin(1)
    backup.on_train_batch_end(0)
    assert backup.global_step == 11
    backup.on_epoch_end(1)
    backup.on_epoch_begin(2)
    backup.on_train_batch_end(0)
    assert backup.global_step == 17


def test_backup_restores_weights_optimizer_and_random_state(tmp_path):
    x = np.random.default_rng(0).random((8, 4, 4, 1), dtype=np.float32)
    model = _tiny_vae()
    model.fit(x, epochs=1, batch_size=4, verbose=0)  # moves weights, optimizer and RNG state
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint={"lr": 1})
    backup.set_model(model)
    backup.global_step = 2
    backup._save({"loss": 1.0})
    assert json.loads((tmp_path / "b" / "latest.json").read_text())["global_step"] == 2

    fresh = _tiny_vae()
    other = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint={"lr": 1})
    assert other.restore(fresh) == 2
    for a, b in zip(model.variables, fresh.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert int(fresh.optimizer.iterations.numpy()) == 2
    assert bk.rng_variables(fresh) and all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(bk.rng_variables(model), bk.rng_variables(fresh)))
    # the next random draws continue the saved stream
    np.testing.assert_array_equal(np.asarray(model.encode(x, sample=True)),
                                  np.asarray(fresh.encode(x, sample=True)))

    mismatch = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint={"lr": 2})
    with pytest.raises(errors.BackupMismatchError, match="differs in: lr"):
        mismatch.restore(_tiny_vae())


def test_backup_never_saves_nan_and_survives_partial_writes(tmp_path):
    model = _tiny_vae()
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=4)
    backup.set_model(model)
    backup.global_step = 4
    backup._save({"loss": float("nan")})
    assert backup.latest() is None
    backup._save({"loss": 3.0})
    # a kill while writing the next backup leaves a temporary folder behind
    (tmp_path / "b" / ".step-0000000008.tmp").mkdir()
    assert backup.latest()["global_step"] == 4
    backup.finish()
    assert not (tmp_path / "b").exists()


def test_throughput_counts_training_time(monkeypatch):
    clock = iter([10.0, 11.0, 13.0])  # epoch begin, first batch end, last batch end
    monkeypatch.setattr(cb.time, "perf_counter", lambda: next(clock))
    t = cb.Throughput(lambda epoch: 300, batch_size=100)
    logs = {}
    t.on_epoch_begin(0)
    t.on_train_batch_end(0)
    t.on_train_batch_end(2)
    t.on_epoch_end(0, logs)
    assert logs["images_per_s"] == pytest.approx(300 / 3.0)
    assert t.images_per_s == pytest.approx(100.0)
    assert t.steady_images_per_s == pytest.approx(200 / 2.0)  # without the first batch


def test_kill_hook_of_the_tests():
    backup = bk.ResumableBackup("unused", steps_per_epoch=4)
    hook = faults.kill_hook("3:raise")(backup)
    backup.global_step = 2
    hook.on_train_batch_end(1)
    backup.global_step = 3
    with pytest.raises(faults.SimulatedCrash):
        hook.on_train_batch_end(2)


def test_trim_csv_log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.0\n")
    fitting.trim_csv_log(path, 2)
    assert path.read_text().splitlines() == ["epoch,loss", "0,3.0", "1,2.0"]
    fitting.trim_csv_log(tmp_path / "missing.csv", 0)  # no file: nothing to do


def test_runtime_defaults_on_cpu():
    assert runtime.resolve_jit("auto") is False  # no GPU here: XLA off
    assert runtime.resolve_jit("on") is True
    assert runtime.resolve_steps_per_execution("auto") == 16
    assert runtime.resolve_steps_per_execution("4") == 4
    with pytest.raises(recipe.UsageError):
        runtime.resolve_steps_per_execution("0")
    hw = runtime.hardware_info()
    assert hw["cpu_cores"] >= 1 and hw["gpus"] == [] and "no GPU" in hw["description"]
    assert recipe.parse_hparam("hidden_dims=[8, 4]") == ("hidden_dims", (8, 4))
    assert recipe.parse_hparam("noise=masking") == ("noise", "masking")


def test_float32_copy_of_a_mixed_precision_model():
    import keras

    from keraszoo.models import AutoEncoder

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = AutoEncoder(input_shape=(4, 4, 1), latent_dim=2, hidden_dims=(8,))
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.compute_dtype == "float16"
    copy = runtime.float32_copy(model)
    assert copy.compute_dtype == "float32" and copy.get_config()["dtype"]["config"]["name"] == "float32"
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_backup_resumes_when_a_newer_keraszoo_adds_a_flag_left_unset(tmp_path):
    # Backups written before a new variant brought a new flag (None: not set) still resume;
    # a flag that is set, or a changed value, is named in the refusal.
    model = _tiny_vae()
    model.optimizer.build(model.trainable_variables)
    backup = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint={"lr": 1})
    backup.set_model(model)
    backup.global_step = 2
    backup._save({"loss": 1.0})
    newer = bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint={"lr": 1, "num_samples": None})
    assert newer.restore(_tiny_vae()) == 2
    for fingerprint, named in (({"lr": 1, "num_samples": 5}, "num_samples"), ({}, "lr")):
        with pytest.raises(errors.BackupMismatchError, match=f"differs in: {named}\\)"):
            bk.ResumableBackup(tmp_path / "b", steps_per_epoch=2, fingerprint=fingerprint).restore(_tiny_vae())
