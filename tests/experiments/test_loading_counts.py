"""No work twice: an experiment run builds one model and reads its test split once; a report loads each saved
model once and reads each evaluated test split once, whatever figures and checks use them."""

import collections
import contextlib
from unittest import mock

import pytest

import keraszoo
from keraszoo.data import sources
from keraszoo.training.recipe import Recipe
from tests.experiments.report_fixtures import results_dir_for


@contextlib.contextmanager
def counting():
    """Counts ``keraszoo.load``, the archive reads per split and ``Recipe.build_model`` (the model to train)."""
    with mock.patch.object(keraszoo, "load", wraps=keraszoo.load) as load, \
            mock.patch.object(sources, "_read_npz", wraps=sources._read_npz) as read, \
            mock.patch.object(Recipe, "build_model", autospec=True, side_effect=Recipe.build_model) as build:
        yield {"load": load, "read": read, "build": build}


def _split_reads(read):
    """``{(dataset, split): times read}`` (every archive read goes through ``_read_npz(info, split, data_dir)``)."""
    return collections.Counter((call.args[0].name, call.args[1]) for call in read.call_args_list)


def _loads(load):
    return collections.Counter(str(call.args[0]) for call in load.call_args_list)


def test_one_run_builds_trains_and_evaluates_one_model_on_one_read_of_its_test_split(tmp_path, mnist_dir):
    from keraszoo.experiments import Study
    from keraszoo.experiments import execute_run
    from keraszoo.experiments import plan_runs

    study = Study.from_dict({"name": "once", "variants": ["vae"], "fixed": {"hidden_dims": [16], "latent_dim": 2},
                             "grid": {}, "probes": ["active_units", "code_shift"],
                             "budgets": {"smoke": {"limit": 64, "eval_examples": 20, "knn_train_examples": 64}}})
    (spec,), _ = plan_runs(study, "mnist", "smoke")
    with counting() as calls:
        record = execute_run(spec, tmp_path, data_dir=str(mnist_dir))
    assert calls["build"].call_count == 1
    assert calls["load"].call_count == 0  # the trained model is evaluated, not loaded back
    assert _split_reads(calls["read"])[("mnist", "test")] == 1
    assert record["eval"]["num_examples"] == 20 and "active_units" in record["test"] and "knn_accuracy" in record["test"]

    # A folder finished by a killed sweep (no results line yet): loaded once, measured, not rebuilt or retrained.
    with counting() as calls:
        again = execute_run(spec, tmp_path, data_dir=str(mnist_dir))
    assert calls["build"].call_count == 0
    assert _loads(calls["load"]) == {str(tmp_path / spec.model_dir): 1}
    assert _split_reads(calls["read"])[("mnist", "test")] == 1
    deterministic = ("total_loss", "reconstruction_loss", "kl_loss", "mse_per_pixel", "psnr_db", "knn_accuracy")
    assert {k: again["test"][k] for k in deterministic} == pytest.approx({k: record["test"][k] for k in deterministic},
                                                                       rel=1e-5)


def test_a_report_loads_each_model_once_and_reads_the_test_split_once(tmp_path_factory):
    from keraszoo.experiments import report

    results_dir, data_dir = results_dir_for(tmp_path_factory)
    runs = report.read_results(results_dir)
    out = tmp_path_factory.mktemp("counted_report")
    with counting() as calls:
        _, checks = report.write_report(results_dir, out, data_dir=data_dir, mc_samples=4)
    assert len(checks) == len(runs) and all(c.history_ok for c in checks)
    assert _loads(calls["load"]) == {str(results_dir / r["model_dir"]): 1 for r in runs}
    assert _split_reads(calls["read"]) == {("mnist", "test"): 1}  # every run evaluated the same split
    assert calls["build"].call_count == 0
