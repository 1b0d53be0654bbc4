"""Sweeps that really train (tiny ones): the results file, skipping finished runs, torn lines, --workers 2."""

import json
import math
import shutil
import warnings

import pytest

from keraszoo.experiments import ResultsFile
from keraszoo.experiments import TornLineWarning
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study

SCHEMA = {"run_id", "study", "variant", "dataset", "budget", "params", "seed", "epochs", "num_params", "train_seconds",
          "seconds_per_epoch", "history", "test", "eval", "model_dir", "keraszoo_version", "finished_at",
          "epochs_run", "best_epoch", "stopped_early", "still_improving", "recent_improvement", "likelihood",
          "loss_weights", "loss_weight_metrics", "threads", "versions"}


def _weights_mtimes(out, records):
    return {r["run_id"]: (out / r["model_dir"] / "model.weights.h5").stat().st_mtime_ns for r in records}


def test_one_line_per_run_with_the_schema(sweep):
    out, result, _ = sweep
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4 and sorted(r["run_id"] for r in records) == sorted(result.planned)
    for r in records:
        assert set(r) == SCHEMA
        assert r["study"] == "tiny" and r["dataset"] == "mnist" and r["budget"] == "smoke" and r["epochs"] == 1
        assert r["params"] == {"model": r["variant"], "hidden_dims": [32], "batch_size": 64,
                               "latent_dim": r["params"]["latent_dim"]}
        assert r["eval"] == {"split": "test", "num_examples": 50, "binarize": "none"}
        assert r["seed"] == 0 and r["num_params"] > 0 and r["train_seconds"] > 0 and r["threads"] >= 1
        import keras
        import tensorflow as tf

        assert r["versions"]["keras"] == keras.__version__ and r["versions"]["tensorflow"] == tf.__version__
        assert {"keraszoo", "keras", "backend", "tensorflow", "numpy", "python"} <= set(r["versions"])
        assert r["seconds_per_epoch"] == pytest.approx(r["train_seconds"], rel=1e-3)  # one epoch
        # every logged term, one value per epoch
        assert {"loss", "total_loss", "reconstruction_loss", "images_per_s"} <= set(r["history"])
        assert all(len(values) == r["epochs"] for values in r["history"].values())
        test = r["test"]
        for name in ("total_loss", "reconstruction_loss", "mse_per_pixel", "bce_nats_per_image", "psnr_db",
                     "knn_accuracy", "linear_probe_accuracy", "code_shift", "code_shift_relative"):
            assert math.isfinite(test[name]), name
        assert 0 <= test["knn_accuracy"] <= 1 and test["code_shift"] > 0
        folder = out / r["model_dir"]
        assert r["model_dir"] == f"runs/{r['run_id']}" and (folder / "metadata.json").is_file()
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["parameter_count"] == r["num_params"]
        assert test["total_loss"] == pytest.approx(meta["metrics"]["test_total_loss"])
    vae = [r for r in records if r["variant"] == "vae"]
    ae = [r for r in records if r["variant"] == "ae"]
    for r in vae:  # the VAE's terms add up, and its probes are there; the AE has no active units
        t = r["test"]
        assert t["total_loss"] == pytest.approx(t["reconstruction_loss"] + t["kl_loss"], rel=1e-5)
        assert 0 <= t["active_units"] <= r["params"]["latent_dim"] and "negative_elbo_nats" in t
        assert r["history"]["total_loss"][0] == pytest.approx(
            r["history"]["reconstruction_loss"][0] + r["history"]["kl_loss"][0], rel=1e-5)
    assert all("active_units" not in r["test"] and "kl_loss" not in r["test"] for r in ae)
    assert not (out / "work").exists() or not any((out / "work").iterdir())  # backups removed once complete


def test_study_json_records_the_plan(sweep):
    out, result, spec = sweep
    record = json.loads((out / "study.json").read_text())
    assert record["study"] == "tiny" and record["budget"] == "smoke"
    assert record["spec_file"] == str(spec)  # the rerun command names the file, not the study's name
    from keraszoo.experiments import report

    line = report._provenance(report.read_results(out), out)[0]
    assert line.startswith(f"- `keraszoo experiment {spec} --dataset mnist --budget smoke --out {out}`"), line
    assert record["datasets"]["mnist"]["planned"] == result.planned
    assert record["datasets"]["mnist"]["skipped"] == [] and record["datasets"]["mnist"]["failed"] == []


def test_rerun_skips_finished_runs(sweep, mnist_dir):
    out, result, spec = sweep
    before = (out / "results.jsonl").read_bytes()
    mtimes = _weights_mtimes(out, read_results(out))
    again = run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    assert again.completed == [] and sorted(again.already_finished) == sorted(result.planned)
    assert (out / "results.jsonl").read_bytes() == before
    assert _weights_mtimes(out, read_results(out)) == mtimes


def test_a_torn_last_line_is_ignored_on_read_and_its_run_completed_without_retraining(sweep, mnist_dir, tmp_path):
    out0, result, spec = sweep
    out = tmp_path / "copy"
    shutil.copytree(out0, out)
    lines = (out / "results.jsonl").read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    torn = lines[-1][: len(lines[-1]) // 2]  # a crash in the middle of the last write
    (out / "results.jsonl").write_bytes(b"".join(lines[:-1]) + torn)
    with pytest.warns(TornLineWarning, match=r"ignoring a torn last line"):
        records = read_results(out)
    assert len(records) == 3 and last["run_id"] not in {r["run_id"] for r in records}
    mtime = (out / last["model_dir"] / "model.weights.h5").stat().st_mtime_ns
    again = run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    assert again.completed == [last["run_id"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torn line left
        lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4 and len({r["run_id"] for r in records}) == 4
    redone, = [r for r in records if r["run_id"] == last["run_id"]]
    assert (out / last["model_dir"] / "model.weights.h5").stat().st_mtime_ns == mtime  # evaluated, not retrained
    assert redone["test"] == pytest.approx(last["test"], rel=1e-5) and redone["history"] == last["history"]


def test_a_malformed_complete_line_is_an_error(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"run_id": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=r"results\.jsonl, line 2: not a JSON object"):
        ResultsFile(tmp_path).read()


def test_a_deleted_run_folder_is_run_again(sweep, mnist_dir, tmp_path):
    out0, result, spec = sweep
    out = tmp_path / "copy"
    shutil.copytree(out0, out)
    first = read_results(out)[0]
    shutil.rmtree(out / first["model_dir"])
    again = run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    assert again.completed == [first["run_id"]]
    assert (out / first["model_dir"] / "metadata.json").is_file()
    assert len(read_results(out)) == 4  # the last record of a run wins


def test_two_workers_give_the_same_runs_and_results(sweep, mnist_dir, tmp_path):
    out1, result1, spec = sweep
    out2 = tmp_path / "parallel"
    result2 = run_study(str(spec), dataset="mnist", budget="smoke", out=out2, data_dir=str(mnist_dir), workers=2,
                        quiet=True)
    assert result2.planned == result1.planned and sorted(result2.completed) == sorted(result1.planned)
    one = {r["run_id"]: r for r in read_results(out1)}
    two = {r["run_id"]: r for r in read_results(out2)}
    assert set(one) == set(two)
    for run_id, r in one.items():
        s = two[run_id]
        for key in ("study", "variant", "dataset", "budget", "params", "seed", "epochs", "num_params", "eval",
                    "model_dir"):
            assert s[key] == r[key], key
        assert set(s["test"]) == set(r["test"]) and set(s["history"]) == set(r["history"])
        assert s["test"] == pytest.approx(r["test"], rel=1e-4, abs=1e-6)
        for term in r["history"]:
            if term != "images_per_s":
                assert s["history"][term] == pytest.approx(r["history"][term], rel=1e-4), term


def test_a_model_that_cannot_be_built_for_the_dataset_is_skipped_with_its_reason(tmp_path, mnist_dir):
    from keraszoo.experiments import Study

    # three stride-2 convolutions need sides divisible by 8: CIFAR-10's 32, not MNIST's 28
    study = Study.from_dict({"name": "conv3", "variants": ["ae"], "fixed": {"latent_dim": 2, "hidden_dims": [16]},
                             "grid": [{"architecture": ["conv"], "conv_filters": [[4, 4, 4]]}, {}],
                             "budgets": {"smoke": {"limit": 64, "eval_examples": 20, "knn_train_examples": 64}}})
    out = tmp_path / "sweep"
    result = run_study(study, dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True)
    assert len(result.planned) == 2 and len(result.completed) == 1 and not result.failed
    skipped, = result.skipped
    assert skipped["params"]["architecture"] == "conv" and "divisible by 8" in skipped["reason"]
    recorded = json.loads((out / "study.json").read_text())["datasets"]["mnist"]["skipped"]
    assert recorded == [skipped]
    records = read_results(out)
    assert [r["run_id"] for r in records] == result.completed and "architecture" not in records[0]["params"]
    assert not (out / "runs" / skipped["run_id"]).exists()


def test_retrain_keeps_the_first_training_and_trains_the_run_again(sweep, mnist_dir, tmp_path):
    out0, result, spec = sweep
    out = tmp_path / "copy"
    shutil.copytree(out0, out)
    old = {r["run_id"]: r for r in read_results(out)}
    target = sorted(old)[1]
    others = {k: (out / r["model_dir"] / "model.weights.h5").stat().st_mtime_ns for k, r in old.items() if k != target}
    old_weights = (out / old[target]["model_dir"] / "model.weights.h5").read_bytes()
    again = run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True,
                      retrain=[target.rsplit("-", 1)[-1]], reason="a test")
    assert again.completed == [target]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in lines) == sorted(old)  # one line per run: the old one left the file
    kept, = (out / "superseded").iterdir()
    assert kept.name.startswith(target + "@")
    saved = json.loads((kept / "record.json").read_text())
    assert saved["reason"] == "a test" and saved["record"] == old[target]
    assert (kept / "run" / "model.weights.h5").read_bytes() == old_weights
    assert (kept / "run.log").is_file()
    assert (out / old[target]["model_dir"] / "metadata.json").is_file()  # trained again, from its seed
    new = {r["run_id"]: r for r in lines}[target]
    assert new["history"]["total_loss"] == pytest.approx(old[target]["history"]["total_loss"], rel=1e-4)
    study = json.loads((out / "study.json").read_text())
    assert [(e["run_id"], e["reason"], e["superseded"]) for e in study["retrained"]] == [
        (target, "a test", f"superseded/{kept.name}")]
    assert {k: (out / r["model_dir"] / "model.weights.h5").stat().st_mtime_ns
            for k, r in old.items() if k != target} == others  # the other runs untouched
    from keraszoo.experiments.report import _provenance

    assert any("trained again with `--retrain` (a test" in line and target in line
               for line in _provenance(lines, out))


def test_retrain_of_an_unknown_run_moves_nothing(sweep, mnist_dir, tmp_path):
    from keraszoo.experiments import StudyError

    out0, result, spec = sweep
    out = tmp_path / "copy"
    shutil.copytree(out0, out)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(StudyError, match=r"--retrain deadbeef: not a finished run of this sweep .*Nothing was moved"):
        run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True,
                  retrain=["deadbeef"])
    assert (out / "results.jsonl").read_bytes() == before and not (out / "superseded").exists()
    with pytest.raises(StudyError, match=r"--retrain needs the whole sweep folder"):
        run_study(str(spec), dataset="mnist", budget="smoke", out=out, data_dir=str(mnist_dir), quiet=True,
                  retrain=[result.planned[0]], shard="0/2")


def test_results_file_remove_drops_only_those_lines(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"run_id": "a"}\n{"run_id": "b", "x": 1}\n{"run_id": "c"}\n{"run_')
    assert ResultsFile(tmp_path).remove(["b", "z"]) == 1
    assert (tmp_path / "results.jsonl").read_text() == '{"run_id": "a"}\n{"run_id": "c"}\n'
    assert ResultsFile(tmp_path).remove(["z"]) == 0
