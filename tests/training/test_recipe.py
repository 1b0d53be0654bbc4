"""The typed Recipe: its flat form is the manifest's recipe["args"], and it trains from Python."""

import json

import pytest

from keraszoo.training import Recipe
from keraszoo.training import run
from keraszoo.training.arguments import parse_train_argv
from keraszoo.training.recipe import UsageError
from keraszoo.weights import manifest


@pytest.mark.parametrize("name", manifest.list_models())
def test_every_published_recipe_reads_back_unchanged(name):
    recorded = manifest.get_entry(name)["recipe"]["args"]
    recipe = Recipe.from_args(recorded)

    def set_args(args):
        # An argument absent from an older recipe (a flag added since, e.g. --mmd-weight) reads as None (unset).
        return {key: value for key, value in args.items() if value is not None}

    assert set_args(recipe.to_args()) == set_args(recorded)
    # (Earlier records hold every flag of every variant, None when not given; a recipe writes what was asked.)
    variant, kwargs = recipe.model_spec()
    assert variant == manifest.get_entry(name)["recipe"]["model"]["variant"]
    assert json.loads(json.dumps(kwargs)) == manifest.get_entry(name)["recipe"]["model"]["kwargs"]


def test_presets_flags_and_hparams_combine_in_order():
    recipe = Recipe.from_args({"model": "beta_vae", "latent_dim": 8, "hparam": ["beta=2.5", "decoder_std=0.2"],
                               "seed": 3})
    assert recipe.model_spec() == ("vae", {"beta": 2.5, "latent_dim": 8, "decoder_std": 0.2, "seed": 3})
    assert recipe.to_args().get("beta") is None and recipe.to_args()["hparam"] == ["beta=2.5", "decoder_std=0.2"]
    with pytest.raises(UsageError, match="Unknown training argument"):
        Recipe.from_args({"model": "ae", "learning_rate": 1})
    with pytest.raises(UsageError, match="applies to aae only"):
        Recipe(model="vae", options={"discriminator_lr": 1e-4}).compile_kwargs(
            __import__("keraszoo.models", fromlist=["VAE"]).VAE)


def test_run_a_recipe_built_in_python(tiny_mnist_dir, tmp_path):
    import keraszoo

    recipe = Recipe(model="conv_ae", model_kwargs={"latent_dim": 4, "conv_filters": [8], "hidden_dims": []},
                    dataset="mnist", data_source="npz", epochs=1, batch_size=64, eval_split="test[:32]",
                    steps_per_execution=1)
    assert run(recipe, tmp_path / "out", data_dir=tiny_mnist_dir, verbose=0).status == 0
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert Recipe.from_args(meta["recipe"]["args"]) == recipe
    assert meta["recipe"]["command"].startswith("keraszoo train --model conv_ae")
    assert "--batch-size 64" in meta["recipe"]["command"] and "--lr" not in meta["recipe"]["command"]
    again, _ = parse_train_argv(meta["recipe"]["argv"] + ["--out", "elsewhere"])
    assert again == recipe  # the recorded command line reproduces the recipe
    model = keraszoo.load(tmp_path / "out")
    assert model.architecture == "conv" and model.latent_dim == 4


def test_a_record_holds_what_was_asked_and_old_records_with_other_variants_flags_still_read():
    recipe = Recipe(model="ae", model_kwargs={"latent_dim": 4})
    args = recipe.to_args()
    assert args["latent_dim"] == 4 and "beta" not in args and "mmd_weight" not in args
    # an earlier record: every flag of every variant then loaded (a plugin's included), None when not given
    old = dict(args, beta=None, code_weight=None, discriminator_lr=None)
    assert Recipe.from_args(old) == recipe
    with pytest.raises(UsageError, match="Unknown training argument"):
        Recipe.from_args(dict(args, code_weight=0.5))  # a given value of an unknown argument is still an error
    with pytest.raises(UsageError, match=r"has no hyperparameter\(s\) \['beta'\]"):
        Recipe.from_args(dict(args, beta=2.0))


def test_dry_run_refuses_what_the_run_refuses(capsys):
    from keraszoo.cli import main

    assert main(["train", "--model", "ae", "--beta", "2", "--dry-run"]) == 1
    dry = capsys.readouterr().err
    assert main(["train", "--model", "ae", "--beta", "2", "--out", "unused"]) == 1
    assert capsys.readouterr().err == dry and "no hyperparameter(s) ['beta']" in dry
    with pytest.raises(UsageError, match="--noise-level must be a number"):
        Recipe(model="dae", model_kwargs={"noise_level": "high"})
