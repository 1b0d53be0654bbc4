"""``keraszoo manifest ...``: the maintainers' manifest commands.

``list``/``info``/``check`` run against the packaged manifest; ``add`` and
``metrics`` against a copy in ``tmp_path``, so the repository is never written.
"""

import json
import shutil
import subprocess
import sys

import pytest

from tests.cli.conftest import RECIPE
from tests.cli.conftest import REPO_ROOT
from tests.cli.conftest import assert_one_line_error
from tests.cli.conftest import assert_usage_error
from tests.cli.conftest import cli_env
from tests.cli.conftest import run_cli

PAPER = {"title": "Reducing the Dimensionality of Data with Neural Networks",
         "url": "https://doi.org/10.1126/science.1127647"}
COMMIT = "b" * 40
SUB_COMMANDS = ("list", "info", "check", "add", "metrics")


@pytest.fixture
def packaged_manifest(monkeypatch):
    """The manifest shipped with keraszoo (no $KERASZOO_MANIFEST)."""
    from keraszoo.weights import manifest

    monkeypatch.delenv(manifest.MANIFEST_ENV, raising=False)
    return manifest


@pytest.fixture(scope="module")
def recipe_model(tiny_models, tmp_path_factory):
    """The tiny AutoEncoder saved again with a recipe, as ``keraszoo train`` writes it (what 'add' needs)."""
    import keraszoo

    return keraszoo.save_pretrained(keraszoo.load(tiny_models.ae), tmp_path_factory.mktemp("recipe") / "ae",
                                    recipe=RECIPE, dataset="mnist", data_license="CC BY-SA 3.0", paper=PAPER)


@pytest.fixture
def manifest_copy(zoo_manifest, tmp_path):
    """A writable copy of the test zoo's manifest and its bundled weights."""
    path = tmp_path / "weights_manifest.json"
    shutil.copy(zoo_manifest, path)
    shutil.copytree(zoo_manifest.parent / "pretrained", tmp_path / "pretrained")
    return path


def add_args(name, directory, revision=COMMIT, *extra):
    return ["add", name, directory, "--repo-id", "keraszoo-test/tiny-ae", "--revision", revision,
            "--dataset", "mnist", "--weights-license", "MIT", "--data-license", "CC BY-SA 3.0",
            "--paper-title", PAPER["title"], "--paper-url", PAPER["url"], *extra]


def test_list_info_check_of_the_packaged_manifest(cli, packaged_manifest):
    code, out, err = cli("manifest", "list")
    assert code == 0, err
    assert out.split() == packaged_manifest.list_models()
    assert "vae_mnist" in out.split()

    code, out, err = cli("manifest", "info", "vae_mnist")
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(packaged_manifest.info("vae_mnist")))

    code, out, err = cli("manifest", "check")
    assert code == 0, err
    report = packaged_manifest.check_bundle_limits()
    assert out.strip() == (f"OK: {len(packaged_manifest.list_models())} model(s), {len(report['models'])} "
                           f"bundled, {report['total_bytes']} bytes of bundled weights")

    code, out, err = cli("manifest", "info", "vae_mnst")
    assert code == 1 and out == ""
    assert_one_line_error(err, "Unknown pretrained model 'vae_mnst'", "Did you mean 'vae_mnist'")


def test_add_then_metrics_on_a_manifest_copy(cli, recipe_model, manifest_copy, zoo_manifest, tmp_path):
    before = zoo_manifest.read_text()
    option = ["--manifest", manifest_copy]
    code, out, err = cli("manifest", *option, *add_args("tiny_ae", recipe_model, COMMIT, "--bundle",
                                                        "--description", "tiny test AE"))
    assert code == 0, err
    assert out.startswith(f"added tiny_ae: keraszoo-test/tiny-ae@{COMMIT}, bundled in ")
    code, out, err = cli("manifest", "list", *option)  # --manifest also after the sub-command
    assert code == 0, err
    assert out.split() == ["tiny_ae", "tiny_vae"]
    entry = json.loads(manifest_copy.read_text())["models"]["tiny_ae"]
    assert entry["hub"]["repo_id"] == "keraszoo-test/tiny-ae" and entry["hub"]["revision"] == COMMIT
    assert entry["recipe"] == RECIPE and entry["description"] == "tiny test AE"
    assert entry["hub"]["files"]["model.weights.h5"]["sha256"]

    results = tmp_path / "eval.json"
    results.write_text(json.dumps({"metrics": {"test_bce": 77.5}, "evaluation": {"command": "keraszoo evaluate"}}))
    code, out, err = cli("manifest", *option, "metrics", "tiny_ae", results)
    assert code == 0, err
    assert out.strip() == "recorded 1 metric(s) for tiny_ae"
    (tmp_path / "bare.json").write_text(json.dumps({"psnr_db": 20.5, "test_mse": 0.01}))
    code, out, err = cli("manifest", *option, "metrics", "tiny_vae", tmp_path / "bare.json")
    assert code == 0, err
    assert out.strip() == "recorded 2 metric(s) for tiny_vae"

    code, out, err = cli("manifest", *option, "info", "tiny_ae")
    assert code == 0, err
    described = json.loads(out)
    assert described["metrics"] == {"test_bce": 77.5} and described["bundled_available"] is True
    assert described["evaluation"]["command"] == "keraszoo evaluate"
    code, out, err = cli("manifest", *option, "check")
    assert code == 0, err
    assert out.startswith("OK: 2 model(s), 2 bundled")
    assert zoo_manifest.read_text() == before


def test_manifest_errors(cli, recipe_model, manifest_copy, tmp_path):
    before = manifest_copy.read_text()
    option = ["--manifest", manifest_copy]
    code, out, err = cli("manifest", *option, *add_args("bad", recipe_model, "main"))
    assert code == 1 and out == ""
    assert_one_line_error(err, "pinned 40-hex commit id")
    code, _, err = cli("manifest", *option, *add_args("tiny_vae", recipe_model))
    assert code == 1
    assert_one_line_error(err, "tiny_vae")
    code, _, err = cli("manifest", *option, "metrics", "tiny_vae", tmp_path / "missing.json")
    assert code == 1
    assert_one_line_error(err, "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = cli("manifest", *option, "metrics", "tiny_vae", tmp_path / "broken.json")
    assert code == 1
    assert_one_line_error(err)
    assert manifest_copy.read_text() == before


def test_usage_errors_and_help(cli):
    proc = run_cli("manifest")
    assert proc.returncode == 2
    assert_usage_error(proc.stderr, "manifest", "required: COMMAND")
    proc = run_cli("manifest", "add", "name", "dir", "--binarization", "maybe")
    assert proc.returncode == 2
    assert_usage_error(proc.stderr, "manifest add", "invalid choice: 'maybe'")

    code, out, _ = cli("manifest", "--help")
    assert code == 0 and out.startswith("usage: keraszoo manifest")
    for command in SUB_COMMANDS:
        assert f"\n    {command}" in out, command
        code, out_sub, err = cli("manifest", command, "--help")
        assert code == 0, (command, err)
        assert out_sub.startswith(f"usage: keraszoo manifest {command}"), (command, out_sub[:200])
        assert f"examples:\n  keraszoo manifest {command}" in out_sub, command


def test_python_m_keraszoo_manifest_in_a_subprocess(zoo_manifest):
    def manifest_command(*args):
        return subprocess.run([sys.executable, "-m", "keraszoo", "manifest", *args], capture_output=True, text=True,
                              timeout=60, env=cli_env(zoo_manifest), cwd=REPO_ROOT)

    proc = manifest_command("check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK: 1 model(s), 1 bundled")
    proc = manifest_command("info", "tiny_vea")
    assert proc.returncode == 1 and proc.stdout == ""
    assert_one_line_error(proc.stderr, "Did you mean 'tiny_vae'")
