"""keraszoo.training.train (keraszoo train, training/train.py): arguments, recipes, outputs, determinism, resume, mirrored."""

import json
import signal

import numpy as np
import pytest

from keraszoo.training import Recipe
from keraszoo.training.arguments import parse_train_argv
from keraszoo.training.arguments import recipe_argv
from keraszoo.training.recipe import UsageError
from tests.support.faults import SimulatedCrash
from tests.support.faults import injected
from tests.training.helpers import assert_same_weights
from tests.training.helpers import base_args
from tests.training.helpers import run_script
from tests.training.helpers import train_cli
from tests.training.helpers import train_in_process
from tests.training.helpers import weights_of


def args_to_argv(args):
    """The full command line of a recipe's flat form."""
    return recipe_argv(Recipe.from_args(args), full=True)

# ------------------------------------------------------------------ arguments


def _parse(argv):
    recipe, context = parse_train_argv(argv)
    return recipe


def test_model_aliases_map_to_variants_and_kwargs():
    key, kw = _parse(["--model", "beta_vae", "--dry-run"]).model_spec()
    assert key == "vae" and kw["beta"] == 4.0
    key, kw = _parse(["--model", "beta_vae", "--beta", "8", "--dry-run"]).model_spec()
    assert kw["beta"] == 8.0  # an explicit flag overrides the alias
    key, kw = _parse(["--model", "conv_ae", "--latent-dim", "2", "--dry-run"]).model_spec()
    assert (key, kw["architecture"], kw["latent_dim"]) == ("ae", "conv", 2)
    key, kw = _parse(["--model", "dae", "--noise", "masking", "--noise-level", "0.5",
                                       "--hparam", "hidden_dims=[64,32]", "--seed", "7", "--dry-run"]).model_spec()
    assert key == "dae" and kw == {"noise": "masking", "noise_level": 0.5, "hidden_dims": (64, 32), "seed": 7}
    with pytest.raises(UsageError, match="Did you mean 'vae'"):
        _parse(["--model", "vea", "--dry-run"]).model_spec()


def test_hidden_dims_none_means_no_hidden_dense_layer_and_survives_a_recipe():
    args = _parse(["--model", "conv_ae", "--hidden-dims", "none", "--dry-run"])
    key, kw = args.model_spec()
    assert kw["hidden_dims"] == [] and kw["architecture"] == "conv"
    rec = args.to_args()
    assert _parse(args_to_argv(rec) + ["--dry-run"]).to_args() == rec
    with pytest.raises(SystemExit):
        _parse(["--model", "ae", "--hidden-dims", "0,3", "--dry-run"])


def test_every_preset_names_a_registered_variant():
    from keraszoo.models import list_presets
    from keraszoo.models import list_variants

    for alias, (key, _) in list_presets().items():
        assert key in list_variants(), alias
    assert set(list_variants()) <= set(list_presets())
    for alias in ("conv_ae", "beta_vae", "conv_beta_vae", "conv_hvae", "conv_aae"):
        assert alias in list_presets()


def test_command_line_errors(capsys, tiny_mnist_dir):
    assert train_cli([]) == 2  # --model missing
    assert "--model is required" in capsys.readouterr().err
    assert train_cli(["--model", "vae"]) == 2  # --out missing
    assert train_cli(["--model", "vae", "--epochs", "0", "--out", "x"]) == 2
    # a flag the variant does not take is refused before any training
    rc = train_cli(base_args(tiny_mnist_dir, **{"--beta": 2.0, "--out": "unused"}))
    assert rc == 1
    assert "no hyperparameter(s) ['beta']" in capsys.readouterr().err


def test_missing_dataset_reports_how_to_fix_it(capsys, tmp_path):
    rc = train_cli(base_args(tmp_path / "empty", **{"--out": tmp_path / "out"}))
    assert rc == 1
    err = capsys.readouterr().err
    assert "KERASZOO_DATA_DIR" in err and "mnist.npz" in err


def test_recipe_args_round_trip_through_a_command_line():
    args = _parse(["--model", "sae", "--sparsity", "l1", "--hidden-dims", "64,32", "--mixed-precision",
                   "--no-eval", "--hparam", "sparsity_target=0.1", "--out", "o"])
    rec = args.to_args()
    assert "out" not in rec and rec["hidden_dims"] == [64, 32] and rec["mixed_precision"] is True
    again = _parse(args_to_argv(rec) + ["--out", "elsewhere"]).to_args()
    assert again == rec
    json.dumps(rec)  # JSON-able, for the manifest
    with pytest.raises(UsageError, match="Unknown training argument"):
        args_to_argv({"learning_rate": 1})


def test_dry_run_prints_the_resolved_configuration(capsys):
    assert train_cli(["--model", "beta_vae", "--dataset", "cifar10", "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "vae" and out["model_kwargs"]["beta"] == 4.0
    assert out["args"]["dataset"] == "cifar10"


# ------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def trained_run(tiny_mnist_dir, tmp_path_factory):
    """One tiny training run (in-process); its folder and argv."""
    out = tmp_path_factory.mktemp("run") / "ae"
    argv = base_args(tiny_mnist_dir, **{"--out": out, "--backup-every": 3})
    assert train_cli(argv) == 0
    return out, argv


def test_run_writes_a_loadable_pretrained_folder(trained_run):
    import keraszoo

    out, argv = trained_run
    for name in ("config.json", "model.weights.h5", "metadata.json", "README.md", "training_log.csv",
                 "command.txt"):
        assert (out / name).is_file(), name
    assert not (out / "train_state" / "backup").exists()  # deleted after a completed run
    log = (out / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,") and "images_per_s" in log[0] and len(log) == 3
    meta = json.loads((out / "metadata.json").read_text())
    recipe = meta["recipe"]
    assert recipe["num_train_examples"] == 256 and recipe["steps_per_epoch"] == 8
    assert recipe["epochs"] == 2 and recipe["batch_size"] == 32 and recipe["seed"] == 0
    assert recipe["images_per_s"] > 0 and recipe["wall_time_s"] > 0
    assert recipe["argv"] == argv and recipe["command"].startswith("keraszoo train --model ae")
    assert (out / "command.txt").read_text().strip() == recipe["command"]
    assert recipe["args"]["hidden_dims"] == [32] and "cores" in recipe["hardware"]
    assert set(recipe["versions"]) >= {"keraszoo", "keras", "tensorflow"}
    assert meta["metrics"]["test_reconstruction_loss"] > 0
    model = keraszoo.load(str(out))
    assert model.variant == "ae" and model.latent_dim == 4
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    assert np.asarray(model.reconstruct(x)).shape == (3, 28, 28, 1)


def test_same_seed_gives_identical_weights_other_seed_does_not(tiny_mnist_dir, tmp_path):
    # the DAE draws corruption noise every step: determinism covers the RNG too
    common = {"--model": "dae", "--no-eval": "", "--epochs": 1}
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": tmp_path / "a"})) == 0
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": tmp_path / "b"})) == 0
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": tmp_path / "c", "--seed": 1})) == 0
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    wa, wc = weights_of(tmp_path / "a"), weights_of(tmp_path / "c")
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)


def test_recipe_from_the_manifest_reruns_the_same_training(trained_run, tmp_path, capsys):
    from keraszoo.weights import manifest

    out, argv = trained_run
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format_version": 1, "models": {}}))
    manifest.add_entry("ae_tiny", out, repo_id="keraszoo-test/ae-tiny", revision="0" * 40,
                       dataset="mnist", license={"weights": "MIT", "data": "CC BY-SA 3.0"},
                       paper={"title": "t", "url": "https://example.org"}, path=path)
    recorded = json.loads((out / "metadata.json").read_text())["recipe"]["args"]

    assert train_cli(["--recipe", "ae_tiny", "--manifest", str(path), "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)["args"]
    assert resolved == recorded

    # flags given with --recipe override it
    assert train_cli(["--recipe", "ae_tiny", "--manifest", str(path), "--epochs", "5", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["args"]["epochs"] == 5

    # and the rerun trains exactly the same weights
    rerun = tmp_path / "rerun"
    assert train_cli(["--recipe", "ae_tiny", "--manifest", str(path), "--out", str(rerun),
                       "--data-dir", argv[argv.index("--data-dir") + 1]]) == 0
    assert_same_weights(out, rerun)
    assert json.loads((rerun / "metadata.json").read_text())["recipe"]["rerun_of"] == "ae_tiny"

    with pytest.raises(Exception, match="Unknown pretrained model"):
        parse_train_argv(["--recipe", "nope", "--manifest", str(path)])


def test_recipe_args_may_be_an_argv_list(tmp_path, monkeypatch, capsys):
    from keraszoo.training import arguments

    monkeypatch.setattr(arguments, "read_recipe_args",
                        lambda name, path=None: ["--model", "cae", "--contractive-weight", "0.5"])
    assert train_cli(["--recipe", "x", "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "cae" and out["model_kwargs"]["contractive_weight"] == 0.5


# ------------------------------------------------------------------ resume after SIGKILL

RESUME_ARGS = {"--model": "vae", "--binarize": "dynamic", "--no-eval": "", "--backup-every": 5,
               "--steps-per-execution": 2}


def test_crash_mid_epoch_then_resume_gives_the_uninterrupted_weights(tiny_mnist_dir, tmp_path, monkeypatch):
    """In-process version of the SIGKILL test below (fast): a crash after step 12."""
    # A VAE (sampling noise) on dynamically binarized data: every random
    # stream and the step bookkeeping must survive the crash.
    common = dict(RESUME_ARGS, **{"--steps-per-execution": 1})
    reference = tmp_path / "reference"
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": reference})) == 0
    out = tmp_path / "crashed"
    argv = base_args(tiny_mnist_dir, **common, **{"--out": out})
    with injected("11:raise"), pytest.raises(SimulatedCrash):
        train_in_process(argv)
    state = json.loads((out / "train_state" / "backup" / "latest.json").read_text())
    assert state["global_step"] == 10
    assert train_cli(argv) == 0
    assert_same_weights(reference, out)
    assert not (out / "train_state" / "backup").exists()


def test_a_resume_with_early_stopping_keeps_the_random_generators_state(tiny_mnist_dir, tmp_path):
    """Early stopping reads the best epoch's weights from best.weights.h5 on a resume; loading that file must not
    leave the VAE's noise generator (nor an optimizer) at the best epoch's state. It did: the resumed run parted
    from the uninterrupted one from the epoch it resumed in (seen in the latent study's sweep)."""
    common = dict(RESUME_ARGS, **{"--steps-per-execution": 1, "--epochs": 3, "--val-split": 0.25,
                                  "--early-stopping": 5, "--binarize": "none"})
    reference = tmp_path / "reference"
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": reference})) == 0
    out = tmp_path / "crashed"
    argv = base_args(tiny_mnist_dir, **common, **{"--out": out})
    with injected("11:raise"), pytest.raises(SimulatedCrash):
        train_in_process(argv)  # mid-epoch 2, after the best-weights file of epoch 1 was written
    assert any(out.rglob("best.weights.h5"))  # the file the resume reads the best epoch's weights from
    assert train_cli(argv) == 0
    assert_same_weights(reference, out)
    logged = [[c for i, c in enumerate(row.split(",")) if i != 1]  # every column but the throughput
              for row in (reference / "training_log.csv").read_text().splitlines()]
    assert logged == [[c for i, c in enumerate(row.split(",")) if i != 1]
                      for row in (out / "training_log.csv").read_text().splitlines()]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tiny_mnist_dir, tmp_path):
    # as above, in subprocesses, with 2 steps per execution
    common = RESUME_ARGS
    reference = tmp_path / "reference"
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": reference})) == 0

    out = tmp_path / "killed"
    argv = base_args(tiny_mnist_dir, **common, **{"--out": out})
    # 8 steps per epoch: backups at steps 6, 8 (epoch end) and 10; killed after step 12.
    killed = run_script(argv, kill="11")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "model.weights.h5").exists()
    state = json.loads((out / "train_state" / "backup" / "latest.json").read_text())
    assert state["global_step"] == 10  # epoch 2, step 2: steps 11-12 are lost and redone

    # a different configuration may not resume this backup
    assert train_cli(argv + ["--lr", "0.01"]) == 1

    resumed = run_script(argv)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming from the backup at epoch 2, step 2" in resumed.stderr
    assert_same_weights(reference, out)
    log = (out / "training_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["0", "1"]


# ------------------------------------------------------------------ tf.distribute


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_the_default_strategy(tiny_mnist_dir, tmp_path):
    common = {"--no-eval": "", "--epochs": 1}
    assert train_cli(base_args(tiny_mnist_dir, **common, **{"--out": tmp_path / "default"})) == 0
    res = run_script(base_args(tiny_mnist_dir, **common, **{"--out": tmp_path / "mirrored",
                                                            "--strategy": "mirrored", "--cpu-replicas": 2}))
    assert res.returncode == 0, res.stderr[-2000:]
    recipe = json.loads((tmp_path / "mirrored" / "metadata.json").read_text())["recipe"]
    assert recipe["num_replicas"] == 2 and recipe["strategy"] == "mirrored"
    # same global batches split over two replicas: equal up to float summation order
    assert_same_weights(tmp_path / "default", tmp_path / "mirrored", atol=1e-5)
    wd, wm = weights_of(tmp_path / "default"), weights_of(tmp_path / "mirrored")
    trained = [k for k in wd if "optimizer" not in k]
    assert trained and all(np.isfinite(wm[k]).all() for k in trained)


def test_cpu_replicas_needs_a_fresh_process(capsys, tiny_mnist_dir, tmp_path):
    import tensorflow as tf

    tf.constant(0)  # TensorFlow is initialized in this process
    if len(tf.config.list_logical_devices("CPU")) == 3:
        pytest.skip("this process happens to have 3 logical CPUs")
    rc = train_cli(base_args(tiny_mnist_dir, **{"--out": tmp_path / "o", "--strategy": "mirrored",
                                                 "--cpu-replicas": 3}))
    assert rc == 1 and "fresh process" in capsys.readouterr().err
