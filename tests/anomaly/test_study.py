"""The one-class study: its plan (one class per run, a share of the class held out, baselines per class), the
Recipe's ``classes``, the one-class metrics, a tiny sweep end to end and the report's functions."""

import json

import numpy as np
import pytest

from keraszoo.anomaly import report
from keraszoo.anomaly.metrics import FPR_POINTS
from keraszoo.anomaly.metrics import one_class_metrics
from keraszoo.experiments import Study
from keraszoo.experiments import StudyError
from keraszoo.experiments import plan_runs
from keraszoo.experiments import read_results
from keraszoo.experiments import run_study
from keraszoo.training.recipe import ArgumentValueError
from keraszoo.training.recipe import Recipe
from keraszoo.training.train import _training_arrays


def test_the_default_plan_holds_out_a_tenth_of_each_class_and_runs_baselines_per_class():
    runs, skipped = plan_runs("anomaly", "mnist", "default")
    assert not skipped
    models = [r for r in runs if r.kind == "model"]
    assert {r.model for r in models} == {"ae", "conv_ae", "dae", "vae", "vqvae"}
    for model in {r.model for r in models}:  # 10 classes x 3 seeds
        mine = [r for r in models if r.model == model]
        assert sorted({tuple(r.params["classes"]) for r in mine}) == [(c,) for c in range(10)] and len(mine) == 30
    for r in models:
        assert r.recipe_fields["val_split"] == 0.1 and r.recipe_fields["early_stopping"] == 5
        assert r.recipe().classes == tuple(r.params["classes"])
        assert r.evaluation["fid"] is False and r.probes == {"anomaly": {"iwae_samples": 20, "elbo_samples": 10}}
    classical = [r for r in runs if r.kind == "classical"]
    count = {name: len([r for r in classical if r.model == name]) for name in {r.model for r in classical}}
    assert count == {"pca_anomaly": 10, "ocsvm": 10, "kde": 10, "isolation_forest": 30}  # seeds change the forest only
    assert all(r.recipe_fields["val_split"] == 0.1 for r in classical)
    assert "latent_dim" not in next(r for r in classical if r.model == "isolation_forest").params


def test_a_budget_holds_out_a_count_or_a_share_not_both():
    with pytest.raises(StudyError, match=r"val_fraction must be a number in \(0, 1\)"):
        Study(name="x", variants=("ae",), budgets={"smoke": {"val_fraction": 1.5}})
    study = Study(name="x", variants=("ae",), grid={"classes": [[1]]},
                  budgets={"smoke": {"val_fraction": 0.2, "val_examples": 10}})
    with pytest.raises(StudyError, match="either val_examples .* or val_fraction"):
        plan_runs(study, "mnist", "smoke")


def test_recipe_classes_keep_the_images_of_those_classes(tiny_mnist_dir):
    recipe = Recipe(model="ae", classes=[3, 1], val_split=0.1)
    assert recipe.classes == (3, 1) and recipe.to_args()["classes"] == [3, 1]
    assert "classes" not in Recipe(model="ae").to_args()  # unset: earlier runs' fingerprints hold
    x, x_val, y, _ = _training_arrays(recipe, str(tiny_mnist_dir), None, True)
    assert set(np.unique(y)) == {1, 3} and len(x) + len(x_val) == int(np.isin(
        np.load(tiny_mnist_dir / "mnist.npz")["y_train"], [1, 3]).sum())
    for bad in ([], [1, 1], [-1], "3"):
        with pytest.raises(ArgumentValueError, match="--classes must be"):
            Recipe(model="ae", classes=bad)


def test_one_class_metrics_are_scikit_learns():
    from sklearn.metrics import average_precision_score
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = np.arange(200) % 10
    scores = rng.normal(size=200) + (labels != 3) * 1.5
    out = one_class_metrics(scores, labels, [3], "s", seconds=1.0, top=True)
    anomalous = (labels != 3).astype(int)
    assert out["anomaly_auroc_s"] == pytest.approx(roc_auc_score(anomalous, scores))
    assert out["anomaly_ap_s"] == pytest.approx(average_precision_score(anomalous, scores))
    tprs = [out[f"anomaly_tpr_s_at_{p:g}"] for p in FPR_POINTS]
    assert tprs == sorted(tprs) and 0 <= tprs[0] <= tprs[-1] <= 1
    assert out["anomaly_top_1"] == int(np.argmax(scores))
    assert labels[out["anomaly_top_normal_1"]] == 3
    with pytest.raises(ValueError, match="need normal and anomalous test images"):
        one_class_metrics(scores, labels, list(range(10)), "s")


def test_a_tiny_one_class_sweep_end_to_end(tiny_mnist_dir, tmp_path):
    spec = {"name": "tiny_anomaly", "fixed": {"latent_dim": 4, "hidden_dims": [16], "batch_size": 32},
            "grid": {"model": ["vae"], "classes": [[1]]}, "probes": {"anomaly": {"iwae_samples": 3, "elbo_samples": 2}},
            "classical": ["pca_anomaly", "isolation_forest"], "datasets": ["mnist"],
            "budgets": {"smoke": {"limit": None, "eval_examples": None, "knn_train_examples": 64,
                                  "val_fraction": 0.25}}}
    result = run_study(Study.from_dict(spec), dataset="mnist", budget="smoke", out=tmp_path / "sweep",
                       data_dir=str(tiny_mnist_dir), quiet=True)
    assert not result.failed and not result.skipped
    records = read_results(tmp_path / "sweep")
    vae, = [r for r in records if r["variant"] == "vae"]
    assert {"anomaly_auroc_elbo", "anomaly_auroc_iwae", "anomaly_auroc_latent", "anomaly_auroc_reconstruction",
            "anomaly_top_normal_1"} <= set(vae["test"])
    assert all(0 <= vae["test"][f"anomaly_auroc_{m}"] <= 1 for m in ("elbo", "iwae", "latent", "reconstruction"))
    pca, = [r for r in records if r["variant"] == "pca_anomaly"]
    assert pca["kind"] == "classical" and pca["test"]["anomaly_auroc_pca"] > 0.8 and pca["params"]["classes"] == [1]
    # the report's functions on these lines
    table = report.auroc_table(records, "mnist")
    assert "| vae · elbo |" in table and "PCA reconstruction error" in table and "Deep SVDD" in table
    assert "The best keraszoo detector" in " ".join(report.summary(records, "mnist"))
    pytest.importorskip("matplotlib")
    assert report.roc_figure(records, tmp_path / "roc.png").is_file()
    assert report.top_anomalies_figure(records, tmp_path / "top.png", data_dir=str(tiny_mnist_dir)).is_file()


def _record(model, score, c, seed, auroc, classical=False):
    return {"run_id": f"{model}-{c}-{seed}", "variant": model, "kind": "classical" if classical else None,
            "dataset": "mnist", "seed": seed, "params": {"model": model, "classes": [c], "seed": seed},
            "test": {f"anomaly_auroc_{score}": auroc, f"anomaly_ap_{score}": auroc}}


def test_the_table_gives_intervals_over_seeds_and_the_class_mean():
    records = [_record("ae", "reconstruction", c, s, 0.90 + 0.01 * c + 0.002 * s) for c in range(10) for s in range(3)]
    records += [_record("pca_anomaly", "pca", c, 0, 0.8, classical=True) for c in range(10)]
    table = report.auroc_table(records, "mnist")
    row = next(line for line in table.splitlines() if line.startswith("| ae · reconstruction"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "90.2 ± 0.5"  # 90.0, 90.2, 90.4: t(0.975, 2) * 0.2 / sqrt(3) = 0.50
    assert cells[11].strip("*") == "94.7 ± 0.5" and cells[12] == "3"
    pca = next(line for line in table.splitlines() if line.startswith("| PCA reconstruction error"))
    assert "80.0 (exact)" in pca and pca.rstrip().endswith("exact |")
    text = "\n".join(report.summary(records, "mnist"))
    assert "over the 10 classes is **ae · reconstruction**: 94.7 ± 0.5 % (3 seeds" in text
    assert "PCA reconstruction error 80.0 (exact) %" in text and "Not distinguishable" not in text
    assert "0.1 points below One-Class Deep SVDD's published mean of 94.8 %" in text and "lies inside" in text
    assert ("falls short of Deep SVDD's published AUROC on 4 of 10 classes: class 0 90.2 against 98.0; class 1 91.2 "
            "against 99.7; class 4 94.2 against 94.9; class 6 96.2 against 98.3.") in text
    # a second model whose every seed is within noise of the best is named as not distinguishable from it
    records += [_record("vae", "elbo", c, s, 0.90 + 0.01 * c + 0.002 * ((s + 1) % 3)) for c in range(10) for s in range(3)]
    assert "Not distinguishable from it across seeds: vae · elbo (94.7 ± 0.5)" in "\n".join(report.summary(records))
    assert json.dumps(report.DEEP_SVDD)  # the anchors are plain numbers


def test_a_one_class_study_report_compares_detectors_not_losses_across_classes():
    """The settings of a one-class study differ in their normal class: no loss ranking, no pairwise table; the
    discussion names the best detector by AUROC instead."""
    from keraszoo.experiments import comparisons
    from keraszoo.experiments import discussion
    from keraszoo.experiments import tables
    from keraszoo.experiments import view
    from tests.experiments.report_fixtures import synthetic_line

    lines = []
    for c in range(3):
        for seed in range(3):
            for model, auroc in (("ae", 0.90), ("vae", 0.95)):
                line = synthetic_line("anomaly", model, seed, rec=100.0 + 10 * c + seed, classes=[c])
                line["test"].update({"anomaly_auroc_reconstruction": auroc + 0.01 * c + 0.001 * seed,
                                     "anomaly_ap_reconstruction": 0.99, "anomaly_tpr_reconstruction_at_0.1": 0.5})
                lines.append(line)
    study = view.StudyRuns("anomaly", lines)
    assert study.one_class
    assert comparisons.pairwise_tables(study) == []
    text = "\n".join(discussion.discussion(study))
    assert "over the 3 classes is **vae · reconstruction**: 96.1 ± 0.2 %" in text
    assert "Below it across seeds: ae · reconstruction (91.1 ± 0.2)" in text
    assert "lowest" not in text and "Test minus validation" not in text
    other = "\n".join(tables.other_metrics(study))
    assert "anomaly_" not in other
    assert "a test loss is not the fit to the normal class" in "\n".join(tables.terms_tables(study))
    # the Literature section points to the published row instead of saying there is none
    from keraszoo.experiments import literature

    section = "\n".join(literature.literature_section([study]))
    assert "No published claim is registered" not in section and "Deep SVDD" in section
    assert "No published claim is registered" in "\n".join(literature.literature_section([view.StudyRuns("x", lines)]))
