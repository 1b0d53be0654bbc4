"""Studies as data: spec files, grids, budgets, planning and the errors of bad input (no training here)."""

import json

import pytest

from keraszoo.cli import main
from keraszoo.experiments import BUDGETS
from keraszoo.experiments import STUDIES
from keraszoo.experiments import Study
from keraszoo.experiments import StudyError
from keraszoo.experiments import expand_grid
from keraszoo.experiments import get_study
from keraszoo.experiments import plan_runs
from keraszoo.experiments import run_study
from tests.experiments.conftest import TINY_SPEC


def test_builtin_study_names_are_fixed():
    assert list(STUDIES) == ["latent", "depth", "beta", "sparsity", "contractive", "noise", "variants",
                            "latent_cifar10", "beta_cifar10", "noise_cifar10", "variants_cifar10", "anomaly",
                            "anomaly_cifar10"]


def test_expand_grid_is_the_union_of_products():
    assert expand_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert expand_grid([{"a": [1]}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]
    assert expand_grid({}) == [{}]


def test_a_study_round_trips_through_json():
    study = STUDIES["noise"]
    again = Study.from_dict(json.loads(json.dumps(study.to_dict())))
    assert again.to_dict() == study.to_dict()
    assert [r.run_id for r in plan_runs(again, "mnist", "default")[0]] == \
        [r.run_id for r in plan_runs(study, "mnist", "default")[0]]


def test_latent_and_beta_include_the_squared_error_objective():
    for name in ("latent", "beta"):
        for budget in BUDGETS:
            runs = [r for r in plan_runs(name, "mnist", budget)[0] if r.kind == "model"]
            assert {r.params.get("reconstruction_loss") for r in runs} == {"bce", "mse"}, (name, budget)


def test_default_grids_are_the_issue_s():
    latent = plan_runs("latent", "mnist", "default")[0]
    models = [r for r in latent if r.kind == "model"]
    mse = [r for r in models if r.params["reconstruction_loss"] == "mse"]
    assert sorted({r.params["latent_dim"] for r in mse}) == [2, 4, 8, 16, 32, 64]
    assert {r.variant for r in models} == {"ae", "vae"} and len(models) == (12 + 6) * 3
    classical = [r for r in latent if r.kind == "classical"]
    assert sorted({r.params["latent_dim"] for r in classical if r.variant == "pca"}) == [2, 4, 8, 16, 32, 64]
    assert len([r for r in classical if r.variant == "pca"]) == 6  # deterministic: one run per size
    assert len([r for r in classical if r.variant == "linear_ae"]) == 6 * 3  # one per seed
    beta = plan_runs("beta", "mnist", "default")[0]
    assert sorted({r.params["beta"] for r in beta if r.params["reconstruction_loss"] == "bce"}) == \
        [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    depth = plan_runs("depth", "mnist", "default")[0]
    assert sorted(len(r.params["hidden_dims"]) for r in depth if "architecture" not in r.params) == \
        sorted([1, 2, 3, 4] * 3)
    assert [r.params["architecture"] for r in depth if "architecture" in r.params] == ["conv"] * 3
    contractive = plan_runs("contractive", "mnist", "default")[0]
    assert {r.variant for r in contractive} == {"cae", "ae"}
    noise = plan_runs("noise", "mnist", "default")[0]
    assert {r.params.get("noise") for r in noise} == {"gaussian", "masking", "salt_and_pepper", None}


def test_the_default_budget_trains_to_convergence_on_three_seeds():
    """Issue 28: the whole train split less 5,000 validation images, early stopping, >= 3 seeds, the whole test split."""
    for name, study in STUDIES.items():
        dataset = study.datasets[0]
        runs = [r for r in plan_runs(name, dataset, "default")[0] if r.kind == "model"]
        settings = {}
        for r in runs:
            key = json.dumps({k: v for k, v in r.params.items() if k != "seed"}, sort_keys=True)
            settings.setdefault(key, set()).add(r.seed)
            assert r.recipe_fields["limit"] is None and r.recipe_fields["eval_split"] == "test"
            n_train = {"mnist": 60000, "cifar10": 50000}[dataset]
            if r.recipe().classes is not None:  # a one-class run (the anomaly studies): a tenth of its class held out
                assert r.recipe_fields["val_split"] == 0.1 and r.recipe_fields["early_stopping"] >= 1
            else:
                assert round(r.recipe_fields["val_split"] * n_train) == 5000 and r.recipe_fields["early_stopping"] >= 1
            recipe = r.recipe()
            assert (recipe.val_split, recipe.early_stopping, recipe.seed) == (r.recipe_fields["val_split"],
                                                                             r.recipe_fields["early_stopping"], r.seed)
        assert all(len(seeds) >= 3 for seeds in settings.values()), name


def test_a_study_that_sets_its_seed_runs_once_per_setting():
    study = Study(name="seeded", variants=("ae",), fixed={"seed": 7}, grid={"latent_dim": [2, 4]})
    runs = plan_runs(study, "mnist", "default")[0]
    assert [r.seed for r in runs] == [7, 7]


def test_budget_fields_are_checked():
    for field, value in (("seeds", 0), ("patience", -1), ("val_examples", 0), ("seeds", 1000)):
        with pytest.raises(StudyError, match=field):
            Study(name="x", variants=("ae",), budgets={"default": {field: value}})
    too_many = Study(name="x", variants=("ae",), budgets={"smoke": {"val_examples": 256}})
    with pytest.raises(StudyError, match="no image would be left"):
        plan_runs(too_many, "mnist", "smoke")
    no_validation = Study(name="x", variants=("ae",), budgets={"smoke": {"patience": 3}})
    with pytest.raises(StudyError, match="needs val_examples"):
        plan_runs(no_validation, "mnist", "smoke")


def test_convergence_fields_say_how_training_ended():
    from keraszoo.experiments.execute import convergence

    improving = convergence({"val_total_loss": [10, 9, 8, 7.9, 7.95, 7.9, 7.89]}, cap=7, patience=2)
    assert improving == {"epochs_run": 7, "best_epoch": 7, "stopped_early": False, "still_improving": True,
                         "recent_improvement": pytest.approx((7.9 - 7.89) / 7.9)}
    stopped = convergence({"val_total_loss": [10, 9, 8, 7.9, 7.95, 7.96, 7.97]}, cap=50, patience=3)
    assert (stopped["best_epoch"], stopped["stopped_early"], stopped["still_improving"]) == (4, True, False)
    assert stopped["recent_improvement"] == 0.0
    plateau = convergence({"val_total_loss": [3, 2, 1, 1.5, 1.2]}, cap=5, patience=2)
    assert (plateau["best_epoch"], plateau["still_improving"]) == (3, False)
    assert convergence({"total_loss": [1.0, 0.5]}, cap=2, patience=0)["best_epoch"] is None


def test_variants_study_runs_every_registered_variant_at_one_latent_size():
    from keraszoo.models import list_variants

    runs, skipped = plan_runs("variants", "mnist", "smoke")
    assert sorted(r.variant for r in runs) == sorted(list_variants()) and not skipped
    assert {r.params["latent_dim"] for r in runs} == {16}


def test_run_ids_are_deterministic_unique_and_filesystem_safe():
    import re

    for name, study in STUDIES.items():
        ids = [r.run_id for r in plan_runs(name, study.datasets[0], "default")[0]]
        assert ids == [r.run_id for r in plan_runs(name, study.datasets[0], "default")[0]]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[A-Za-z0-9._,=+-]+", i) and len(i) < 140 for i in ids)
    # the dataset and the budget are part of a run's identity
    mnist = {r.run_id for r in plan_runs("depth", "mnist", "smoke")[0]}
    assert not mnist & {r.run_id for r in plan_runs("depth", "cifar10", "smoke")[0]}
    assert not mnist & {r.run_id for r in plan_runs("depth", "mnist", "default")[0]}


def test_budgets_change_epochs_limit_and_eval_size():
    smoke, = [r for r in plan_runs("contractive", "mnist", "smoke")[0] if r.variant == "ae"]
    assert (smoke.epochs, smoke.recipe_fields["limit"], smoke.evaluation["num_examples"]) == (1, 256, 100)
    full = [r for r in plan_runs("contractive", "mnist", "full")[0] if r.variant == "ae"]
    assert [r.seed for r in full] == [0, 1, 2, 3, 4]
    assert full[0].recipe_fields["limit"] is None and full[0].evaluation["num_examples"] is None
    assert full[0].recipe_fields["eval_split"] == "test"
    recipe = smoke.recipe()
    assert (recipe.model, recipe.model_kwargs, recipe.epochs, recipe.eval_split) == ("ae", {"latent_dim": 32}, 1,
                                                                                     "test[:100]")


def test_arguments_are_routed_to_recipe_fields_model_kwargs_and_options():
    spec = dict(TINY_SPEC, variants=["aae"], fixed={"lr": 0.002, "discriminator_lr": 1e-4, "hidden_dims": [32]})
    run = plan_runs(Study.from_dict(spec), "mnist", "smoke")[0][0]
    recipe = run.recipe()
    assert recipe.lr == 0.002 and recipe.options == {"discriminator_lr": 1e-4}
    assert recipe.model_kwargs == {"hidden_dims": [32], "latent_dim": 2}


def test_an_argument_only_some_models_take_skips_the_others_with_a_reason():
    spec = dict(TINY_SPEC, grid={"beta": [1.0, 2.0]})
    runs, skipped = plan_runs(Study.from_dict(spec), "mnist", "smoke")
    assert {r.variant for r in runs} == {"vae"} and len(runs) == 2
    assert len(skipped) == 2 and all("AutoEncoder (ae) takes no argument beta" in s["reason"] for s in skipped)


def test_an_architecture_a_variant_lacks_is_skipped_with_its_reason():
    spec = dict(TINY_SPEC, variants=["vqvae", "ae"], grid={"architecture": ["dense"]})
    runs, skipped = plan_runs(Study.from_dict(spec), "mnist", "smoke")
    assert [r.variant for r in runs] == ["ae"]
    assert skipped[0]["model"] == "vqvae" and "only the 'conv' architecture" in skipped[0]["reason"]


# --------------------------------------------------------------------------- bad input
def test_unknown_study_suggests_the_closest_name():
    with pytest.raises(StudyError, match=r"Unknown study 'latnet'\. Did you mean 'latent'\?"):
        get_study("latnet")


@pytest.mark.parametrize("budget, dataset, message", [
    ("fast", "mnist", r"--budget must be one of smoke, default, full; got 'fast'"),
    ("smoke", "mnits", r"--dataset must be one of .*; got 'mnits'\. Did you mean 'mnist'"),
])
def test_bad_budget_or_dataset(budget, dataset, message):
    with pytest.raises(StudyError, match=message):
        plan_runs("beta", dataset, budget)


def test_a_study_meant_for_other_datasets_is_refused(tiny_spec):
    with pytest.raises(StudyError, match=r"Study 'tiny' runs on mnist; got --dataset 'cifar10'"):
        plan_runs(str(tiny_spec), "cifar10", "smoke")


@pytest.mark.parametrize("spec, message", [
    ('{"name": "x", "variants": ["ae"], "grid": {"latent_dim": [2]}', r"not valid JSON: .* line 1, column"),
    ('[1, 2]', r"must be a JSON object"),
    ('{"variants": ["ae"]}', r"the field 'name' is missing"),
    ('{"name": "x", "variants": ["ae"], "grdi": {}}', r"unknown field 'grdi'\. Did you mean 'grid'\?"),
    ('{"name": "x", "variants": "ae"}', r"variants must be a list of names; got 'ae'"),
    ('{"name": "x", "variants": ["ae"], "grid": {"latent_dim": 2}}', r"grid\.latent_dim must be a non-empty list"),
    ('{"name": "x", "variants": ["ae"], "grid": 3}', r"grid must be an object"),
    ('{"name": "x", "variants": ["ae"], "grid": {"epochs": [1, 2]}}', r"grid\.epochs: 'epochs' is set by the command"),
    ('{"name": "x", "variants": ["ae"], "budgets": {"smoke": {"epoch": 2}}}',
     r"budgets\.smoke\.epoch: unknown budget field.*Did you mean 'epochs'"),
    ('{"name": "x", "variants": ["ae"], "budgets": {"quick": {}}}', r"budgets\.quick: unknown budget"),
    ('{"name": "x", "variants": ["ae"], "budgets": {"smoke": {"epochs": 0}}}',
     r"budgets\.smoke\.epochs must be a positive integer; got 0"),
    ('{"name": "x", "variants": ["ae"], "probes": ["active_unit"]}',
     r"probes: unknown probe 'active_unit'\. Did you mean 'active_units'"),
    ('{"name": "x", "variants": ["ae"], "probes": {"code_shift": {"sigm": 1}}}', r"code_shift has no option 'sigm'"),
    ('{"name": "x", "grid": {"latent_dim": [2]}}', r"give variants"),
    ('{"name": "x", "variants": ["ae"], "fixed": {"model": "vae"}}', r"fixed\.model: name the models in variants"),
])
def test_malformed_spec_files_name_the_field(tmp_path, spec, message):
    path = tmp_path / "bad.json"
    path.write_text(spec)
    with pytest.raises(StudyError, match=message):
        get_study(str(path))


def test_a_missing_spec_file():
    with pytest.raises(StudyError, match=r"No study spec file .*nowhere\.json"):
        get_study("nowhere.json")


def test_unknown_model_in_a_spec(tmp_path):
    study = Study.from_dict(dict(TINY_SPEC, variants=["vea"]))
    with pytest.raises(StudyError, match=r"Unknown model 'vea' in the study\. Did you mean 'vae'"):
        plan_runs(study, "mnist", "smoke")


def test_a_grid_argument_no_model_accepts():
    study = Study.from_dict(dict(TINY_SPEC, grid={"lattent_dim": [2, 4]}))
    with pytest.raises(StudyError, match=r"grid argument 'lattent_dim' is accepted by none of its models \(ae, vae\)\."
                                         r" Did you mean 'latent_dim'"):
        plan_runs(study, "mnist", "smoke")


def test_a_bad_recipe_value_names_the_field():
    # issue 24: the spec's field is named (before, the first run it reached)
    study = Study.from_dict(dict(TINY_SPEC, fixed={"lr": -1.0}))
    with pytest.raises(StudyError, match=r"Study 'tiny': fixed\.lr: --lr must be a finite number > 0"):
        plan_runs(study, "mnist", "smoke")


def test_out_in_a_missing_parent_folder(tmp_path, tiny_spec):
    with pytest.raises(StudyError, match=r"its parent folder .*missing does not exist; create it first"):
        run_study(str(tiny_spec), budget="smoke", out=tmp_path / "missing" / "sweep")
    assert not (tmp_path / "missing").exists()


def test_workers_must_be_positive(tmp_path, tiny_spec):
    with pytest.raises(StudyError, match=r"--workers must be a positive integer; got 0"):
        run_study(str(tiny_spec), budget="smoke", out=tmp_path / "sweep", workers=0)


def test_a_folder_of_another_study_or_budget_is_refused(tmp_path, tiny_spec):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"study": "tiny", "budget": "default", "datasets": {}}))
    with pytest.raises(StudyError, match=r"holds the sweep of study 'tiny' at budget 'default'; give another --out"):
        run_study(str(tiny_spec), budget="smoke", out=out)
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["experiment", "latnet", "--out", "{tmp}/x"], "Did you mean 'latent'"),
    (["experiment", "latent", "--out", "{tmp}/no/such/x"], "does not exist; create it first"),
    (["experiment", "{tmp}/bad.json", "--out", "{tmp}/x"], "unknown field 'grdi'"),
])
def test_cli_reports_bad_input_on_one_line_with_status_2(tmp_path, capsys, argv, message):
    (tmp_path / "bad.json").write_text('{"name": "x", "variants": ["ae"], "grdi": {}}')
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keraszoo experiment: error: ") and message in err[0]


def test_cli_refuses_an_unknown_budget(capsys, tmp_path):
    assert main(["experiment", "beta", "--budget", "fast", "--out", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_the_repository_s_study_files_plan_their_runs():
    """training/studies/*.json (the ladder comparison) are user specs: they must read and plan at every budget."""
    import pathlib

    from keraszoo.models import get_variant

    files = sorted((pathlib.Path(__file__).parents[2] / "training" / "studies").glob("*.json"))
    assert files, "training/studies holds no spec"
    for path in files:
        study = Study.from_json(path)
        for budget in BUDGETS:
            runs, skipped = plan_runs(study, "mnist", budget)
            assert runs and not skipped and len({r.run_id for r in runs}) == len(runs), (path.name, budget, skipped)
            for r in runs:  # every swept argument is one the variant's constructor takes
                cls = get_variant(r.model)
                config = {k: v for k, v in r.params.items() if k not in ("model", "binarize")}
                cls(input_shape=(28, 28, 1), **config)


def test_cifar10_studies_use_conv_networks_and_colour_likelihoods():
    """Issue 28: latent, beta, noise and variants also run on CIFAR-10, with conv networks and no Bernoulli pixels."""
    from keraszoo.models import list_variants

    for name in ("latent_cifar10", "beta_cifar10", "noise_cifar10", "variants_cifar10"):
        assert STUDIES[name].datasets == ("cifar10",)
        runs = [r for r in plan_runs(name, "cifar10", "default")[0] if r.kind == "model"]
        assert runs and all(r.params["architecture"] == "conv" for r in runs)
        assert {r.params.get("reconstruction_loss") for r in runs} <= {"mse", "discretized_logistic"}, name
        assert {len([r for r in runs if r.params == {**p.params, "seed": s}]) for p in runs for s in range(3)} == {1}
    variants = plan_runs("variants_cifar10", "cifar10", "default")[0]
    assert sorted({r.variant for r in variants}) == sorted(list_variants())
    with pytest.raises(StudyError, match="runs on cifar10"):
        plan_runs("latent_cifar10", "mnist", "default")
