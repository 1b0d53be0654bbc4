"""The reproducibility check (keraszoo.experiments.reproducibility): one run trained again in a fresh process."""

import json

import numpy as np
import pytest

from keraszoo.experiments.reproducibility import REPRODUCIBILITY_FILE
from keraszoo.experiments.reproducibility import compare_runs
from keraszoo.experiments.reproducibility import recheck
from keraszoo.experiments.study import StudyError


def _weights(folder, arrays):
    import h5py

    folder.mkdir(parents=True)
    with h5py.File(folder / "model.weights.h5", "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)


def _record(total, knn):
    return {"history": {"total_loss": total, "images_per_s": [100.0, 200.0]}, "test": {"knn_accuracy": knn},
            "epochs_run": len(total)}


def test_identical_trainings_compare_bit_identical(tmp_path):
    w = {"layers/dense/vars/0": np.arange(6, dtype="float32").reshape(2, 3)}
    _weights(tmp_path / "a", w)
    _weights(tmp_path / "b", w)
    # a different speed is not a different result
    first, second = _record([3.0, 2.0], 0.9), _record([3.0, 2.0], 0.9)
    second["history"]["images_per_s"] = [50.0, 60.0]
    first["test"]["anomaly_seconds_latent"], second["test"]["anomaly_seconds_latent"] = 0.36, 0.40  # nor a duration
    out = compare_runs(tmp_path / "a", tmp_path / "b", first, second)
    assert out["weights_bit_identical"] and out["history_bit_identical"] and out["test_bit_identical"]
    assert out["weights_max_abs_diff"] == 0.0 and out["test_max_rel_diff"] == 0.0
    assert "anomaly_seconds_latent" not in out["test"] and "knn_accuracy" in out["test"]


def test_a_rounding_difference_is_measured_not_hidden(tmp_path):
    w = np.ones((2, 3), "float32")
    _weights(tmp_path / "a", {"k": w})
    _weights(tmp_path / "b", {"k": w + np.float32(1e-6) * np.eye(2, 3, dtype="float32")})
    out = compare_runs(tmp_path / "a", tmp_path / "b", _record([3.0, 2.0], 0.9), _record([3.0, 2.5], 0.8))
    assert not out["weights_bit_identical"]
    assert out["weights_max_abs_diff"] == pytest.approx(1e-6, rel=0.05)
    assert not out["history_bit_identical"] and out["history"]["total_loss"]["max_abs"] == pytest.approx(0.5)
    assert out["test"]["knn_accuracy"]["max_rel"] == pytest.approx(0.1 / 0.9)


def test_recheck_refuses_a_folder_without_a_sweep(tmp_path):
    with pytest.raises(StudyError, match="holds no sweep"):
        recheck(tmp_path)


@pytest.mark.slow
def test_recheck_trains_one_run_again_and_records_the_comparison(tmp_path, mnist_dir):
    from keraszoo.experiments import run_study
    from tests.experiments.conftest import TINY_SPEC

    # the grid's keys out of alphabetical order: study.json keeps them sorted, so the run's name planned again from
    # it reads "hidden_dims=16-latent_dim=2" where the sweep's reads "latent_dim=2-hidden_dims=16"
    spec = dict(TINY_SPEC, variants=["ae"], grid={"latent_dim": [2], "hidden_dims": [[16]]})
    out = tmp_path / "sweep"
    run_study(spec, dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True, workers=1)
    (finished,) = [json.loads(line)["run_id"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert finished.index("latent_dim") < finished.index("hidden_dims")
    with pytest.raises(StudyError, match="not a finished run"):
        recheck(out, "no-such-run", data_dir=str(mnist_dir))
    from keraszoo.experiments.execute import training_threads

    line = json.loads((out / "results.jsonl").read_text())
    assert line["threads"] == training_threads()  # workers=1: the run trained in this process
    # the line's thread count wins over the fallback: the fresh process runs as the run did
    record = recheck(out, threads=line["threads"] + 1, data_dir=str(mnist_dir))
    assert json.loads((out / REPRODUCIBILITY_FILE).read_text()) == record
    assert record["run_id"] == finished and record["threads"] == line["threads"]
    assert record["threads_from"] == "the results line"
    # keraszoo's determinism on a CPU: the same run in another process, same thread count, is bit-identical
    assert record["weights_bit_identical"] and record["test_bit_identical"], record


def test_the_recheck_flag_refuses_a_folder_without_a_sweep(tmp_path, capsys):
    from keraszoo.cli import main

    assert main(["experiment", "latent", "--out", str(tmp_path), "--recheck"]) == 2
    assert "holds no sweep" in capsys.readouterr().err


def test_the_report_shows_the_recheck_or_says_it_was_not_measured(tmp_path):
    from keraszoo.experiments.report import reproducibility_section

    assert "Not measured" in "\n".join(reproducibility_section(tmp_path))
    record = {"run_id": "ae-x", "threads": 1, "tensorflow_version": "2.x", "finished_at": "now",
              "weights_bit_identical": False, "history_bit_identical": False, "test_bit_identical": False,
              "weights_max_abs_diff": 2e-6, "weights_max_abs": 0.5, "test_max_rel_diff": 0.001}
    (tmp_path / REPRODUCIBILITY_FILE).write_text(json.dumps(record))
    text = "\n".join(reproducibility_section(tmp_path))
    assert "not bit-identical" in text and "2e-06" in text and "0.1 %" in text
    record.update(weights_bit_identical=True, history_bit_identical=True, test_bit_identical=True)
    (tmp_path / REPRODUCIBILITY_FILE).write_text(json.dumps(record))
    assert "**bit-identical**" in "\n".join(reproducibility_section(tmp_path))
    assert "thread(s), TensorFlow" in "\n".join(reproducibility_section(tmp_path))  # an old record: no source
    record.update(threads_from="the results line")
    (tmp_path / REPRODUCIBILITY_FILE).write_text(json.dumps(record))
    assert "1 TensorFlow thread(s), as the results line says" in "\n".join(reproducibility_section(tmp_path))
