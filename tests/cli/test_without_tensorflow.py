"""The light commands through the real entry points: list/info (no TensorFlow), --help, usage errors.

Each subprocess here either never imports TensorFlow or fails before it does,
so they take a fraction of a second.
"""

import json
import subprocess
import sys

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.cli.conftest import assert_usage_error
from tests.cli.conftest import cli_env
from tests.cli.conftest import run_cli

COMMANDS = ("list", "info", "demo", "reconstruct", "encode", "decode", "sample", "interpolate",
            "evaluate", "train", "finetune", "push", "manifest")


def test_list_and_info_answer_from_the_manifest_without_tensorflow(zoo_manifest):
    script = (
        "import io, json, sys, time, contextlib\n"
        "from keraszoo.cli import main\n"
        "start = time.perf_counter()\n"
        "outputs = []\n"
        "for argv in (['list'], ['list', '--json'], ['list', 'tiny*'], ['info', 'tiny_vae'], ['info', 'tiny_vae', '--json'],\n"
        "             ['manifest', 'list'], ['manifest', 'info', 'tiny_vae'], ['manifest', 'check']):\n"
        "    buffer = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buffer):\n"
        "        assert main(argv) == 0, argv\n"
        "    outputs.append(buffer.getvalue())\n"
        "elapsed = time.perf_counter() - start\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'huggingface_hub') if m in sys.modules)\n"
        "print(json.dumps({'elapsed': elapsed, 'heavy': heavy, 'outputs': outputs}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=cli_env(zoo_manifest))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"list/info imported {report['heavy']}"
    assert report["elapsed"] < 1.0, f"list/info took {report['elapsed']:.2f} s"
    table, as_json, filtered, card, card_json, names, entry_json, check = report["outputs"]
    assert table.splitlines()[0].split() == ["NAME", "MODEL", "DATASET", "INPUT", "LATENT", "WEIGHTS"]
    assert table.splitlines()[1].split() == ["tiny_vae", "VAE", "(dense)", "mnist", "28x28x1", "3", "bundled"]
    rows = json.loads(as_json)
    assert [r["name"] for r in rows] == ["tiny_vae"]
    assert rows[0]["variant"] == "vae" and rows[0]["bundled"] is True and rows[0]["latent_dim"] == 3
    assert filtered == table
    assert "VAE (variant vae, dense), latent_dim 3" in card
    assert "hf://keraszoo-test/tiny-vae@" + "a" * 40 + ", bundled with keraszoo" in card
    assert "test_mse" in card and RECIPE_COMMAND in card
    entry = json.loads(card_json)
    assert entry["name"] == "tiny_vae" and entry["bundled_available"] is True
    assert entry["hub"]["files"]["model.weights.h5"]["sha256"]
    assert names.split() == ["tiny_vae"] and json.loads(entry_json) == entry
    assert check.startswith("OK: 1 model(s), 1 bundled")


RECIPE_COMMAND = "python training/train.py --model vae"


def test_list_on_an_empty_manifest_through_both_entry_points(empty_manifest):
    proc = run_cli("list", manifest=empty_manifest)
    assert proc.returncode == 0, proc.stderr
    assert "No pretrained models are published" in proc.stdout
    proc = run_cli("list", "--json", entry="script", manifest=empty_manifest)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert proc.stderr == ""


def test_info_through_the_script_and_unknown_names(zoo_manifest):
    proc = run_cli("info", "tiny_vae", entry="script", manifest=zoo_manifest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tiny_vae - tiny test VAE")
    assert "load it:    keraszoo.load('tiny_vae')" in proc.stdout
    assert "weights:  hf://keraszoo-test/tiny-vae@" + "a" * 40 in proc.stdout  # the pinned commit

    proc = run_cli("info", "vae_mnist", entry="script")  # the real zoo: bundled, not on the Hub yet
    assert proc.returncode == 0, proc.stderr
    assert "hf://keraszoo/vae_mnist (not yet published on the Hub), bundled with keraszoo" in proc.stdout
    assert "@None" not in proc.stdout

    proc = run_cli("info", "tiny_vea", entry="script", manifest=zoo_manifest)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr, "Unknown pretrained model 'tiny_vea'", "Did you mean 'tiny_vae'")


def test_info_of_a_save_pretrained_folder(tiny_models, cli):
    code, out, err = cli("info", tiny_models.ae)
    assert code == 0, err
    assert "AutoEncoder (variant ae, dense), latent_dim 3" in out
    code, out, err = cli("info", tiny_models.ae, "--json")
    assert code == 0, err
    metadata = json.loads(out)
    assert metadata["model"]["class"] == "AutoEncoder" and metadata["input"]["image_shape"] == [28, 28, 1]


@pytest.mark.parametrize(
    "args, command, fragments",
    [
        ((), None, ("required: COMMAND",)),
        (("bogus",), None, ("invalid choice: 'bogus'",)),
        (("reconstruct", "some_model", "a.png"), "reconstruct", ("-o/--output", "required")),
        (("sample", "some_model", "-n", "0", "-o", "s.png"), "sample", ("-n/--num", "positive integer")),
        (("encode", "some_model", "in.npy", "-o", "codes.txt"), "encode", ("must end with .npy or .npz",)),
        (("interpolate", "m", "a.png", "b.png", "--steps", "1", "-o", "s.png"), "interpolate", ("at least 2",)),
        (("decode", "m", "codes.npy"), "decode", ("required",)),
        (("list", "--jsn"), None, ("unrecognized arguments: --jsn",)),
    ],
)
def test_usage_errors_exit_2_with_a_message(args, command, fragments):
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert_usage_error(proc.stderr, command, *fragments)


def test_errors_before_loading_exit_1_on_one_line(tiny_models, empty_manifest, tmp_path):
    # Missing input: refused before TensorFlow is imported (no model load).
    proc = run_cli("reconstruct", tiny_models.ae, tmp_path / "missing.png", "-o", tmp_path / "r.png",
                   entry="script", manifest=empty_manifest)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "missing.png", "does not exist")
    # A model folder that does not exist.
    proc = run_cli("demo", "--model", tmp_path / "no_such_model", "--out", tmp_path / "demo",
                   manifest=empty_manifest)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "No such directory")
    assert not (tmp_path / "demo").exists()
    # The default demo model when the manifest does not have it.
    proc = run_cli("demo", "--out", tmp_path / "demo", manifest=empty_manifest)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "'vae_mnist'", "no pretrained weights are published")


def test_every_command_has_help_with_an_example(cli):
    for command in COMMANDS:
        code, out, err = cli(command, "--help")
        assert code == 0, (command, err)
        assert out.startswith(f"usage: keraszoo {command}"), (command, out[:200])
        assert f"examples:\n  keraszoo {command}" in out, command
    code, out, _ = cli("--help")
    assert code == 0
    for command in COMMANDS:
        assert f"\n    {command}" in out, command
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("keraszoo ")


def test_help_and_forwarding_of_train_through_the_script(tmp_path):
    proc = run_cli("train", "--help", entry="script")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: keraszoo train")
    assert "--latent-dim" in proc.stdout and "examples:\n  keraszoo train" in proc.stdout

    # --quiet is the CLI's own flag: taken out before the arguments reach train.py.
    proc = run_cli("train", "--model", "beta_vae", "--latent-dim", "7", "--out", tmp_path / "run", "--dry-run",
                   "--quiet", entry="script")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["variant"] == "vae"
    assert plan["model_kwargs"]["latent_dim"] == 7 and plan["model_kwargs"]["beta"] == 4.0

    proc = run_cli("train", "--model", "vae", "--epochs", "0", "--out", tmp_path / "run")
    assert proc.returncode == 2  # train.py's own usage error, passed through
    assert "--epochs" in proc.stderr and "Traceback" not in proc.stderr

    proc = run_cli("finetune", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: keraszoo finetune")
