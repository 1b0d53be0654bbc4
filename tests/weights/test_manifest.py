"""The weights manifest: schema, queries without TensorFlow, entries built from folders, bundle limits."""

import copy
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from keraszoo.weights import IntegrityError
from keraszoo.weights import ManifestError
from keraszoo.weights import UnknownModelError
from keraszoo.weights import bundle
from keraszoo.weights import manifest as mf
from keraszoo.weights import schema
from tests.weights.conftest import LICENSE
from tests.weights.conftest import PAPER
from tests.weights.conftest import RECIPE

REPO_ROOT = mf._PACKAGE_DIR.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _add(saved, name="ae_mnist", *, path=None, **kwargs):
    options = dict(repo_id="keraszoo/ae-mnist", revision=COMMIT, dataset="mnist", license=LICENSE, paper=PAPER,
                   path=path)
    options.update(kwargs)
    return mf.add_entry(name, saved.directory, **options)


# --------------------------------------------------------------------------- the real manifest


def test_repo_manifest_is_valid_and_shared_with_the_package():
    packaged = mf._PACKAGE_DIR / "weights_manifest.json"
    top = REPO_ROOT / "weights_manifest.json"
    assert packaged.is_symlink(), "keraszoo/weights_manifest.json must be a symlink to the top-level file"
    assert os.readlink(packaged) == "../weights_manifest.json"
    assert packaged.resolve() == top.resolve()
    data = mf.read_manifest(top)
    assert data["format_version"] == schema.FORMAT_VERSION
    assert isinstance(data["models"], dict)


def test_bundled_weights_of_the_repo_manifest_respect_the_limits(monkeypatch):
    monkeypatch.delenv(mf.MANIFEST_ENV, raising=False)
    report = mf.check_bundle_limits()  # every bundled file present, digest ok, <= 6 MB, total <= 80 MB
    assert report["total_bytes"] <= bundle.BUNDLE_TOTAL_LIMIT
    on_disk = {p.name for p in (mf._PACKAGE_DIR / "pretrained").glob("*") if p.is_dir()}
    assert on_disk == set(report["models"]), "pretrained/ holds exactly the manifest's bundled models"


def test_manifest_path_falls_back_to_the_repo_root(monkeypatch, tmp_path):
    monkeypatch.delenv(mf.MANIFEST_ENV, raising=False)
    assert mf.manifest_path() == mf._PACKAGED_MANIFEST
    monkeypatch.setattr(mf, "_PACKAGED_MANIFEST", tmp_path / "missing.json")
    assert mf.manifest_path() == mf._REPO_MANIFEST
    assert mf.bundle_root(mf._REPO_MANIFEST) == mf._PACKAGE_DIR
    monkeypatch.setattr(mf, "_REPO_MANIFEST", tmp_path / "also-missing.json")
    with pytest.raises(FileNotFoundError, match="cannot find its weights manifest"):
        mf.manifest_path()


# --------------------------------------------------------------------------- no TensorFlow


def test_list_models_and_info_do_not_import_tensorflow(saved_model, private_manifest):
    _add(saved_model, "ae_mnist", path=private_manifest)
    code = textwrap.dedent("""
        import json, sys
        import keraszoo
        names = keraszoo.list_models()
        described = keraszoo.info("ae_mnist")
        try:
            keraszoo.info("ae_mnsit")
        except ValueError as err:
            suggestion = str(err)
        heavy = sorted(m for m in ("tensorflow", "keras", "huggingface_hub", "h5py") if m in sys.modules)
        print(json.dumps({"names": names, "class": described["model"]["class"], "heavy": heavy,
                          "suggestion": suggestion}))
    """)
    env = dict(os.environ, KERASZOO_MANIFEST=str(private_manifest))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["names"] == ["ae_mnist"]
    assert result["class"] == "AutoEncoder"
    assert result["heavy"] == [], f"imported {result['heavy']}"
    assert "Did you mean 'ae_mnist'" in result["suggestion"]


# --------------------------------------------------------------------------- queries


def test_unknown_names_get_the_closest_known_ones(saved_model, private_manifest):
    _add(saved_model, "vae_mnist", path=private_manifest)
    _add(saved_model, "vae_cifar10", path=private_manifest)
    assert mf.list_models() == ["vae_cifar10", "vae_mnist"]
    assert mf.list_models("*_mnist") == ["vae_mnist"]
    with pytest.raises(UnknownModelError) as info:
        mf.info("vae_mnsit")
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    assert "Did you mean 'vae_mnist'" in str(info.value)
    assert "Known models: vae_cifar10, vae_mnist" in str(info.value)


def test_empty_manifest_says_nothing_is_published(private_manifest):
    assert mf.list_models() == []
    with pytest.raises(UnknownModelError, match="no pretrained weights are published"):
        mf.info("vae_mnist")


def test_info_reports_whether_the_bundle_is_present(saved_model, private_manifest):
    _add(saved_model, "ae_hub_only", path=private_manifest)
    _add(saved_model, "ae_bundled", path=private_manifest, bundle=True)
    assert mf.info("ae_hub_only")["bundled_available"] is False
    described = mf.info("ae_bundled")
    assert described["bundled_available"] is True
    assert described["name"] == "ae_bundled"
    assert described["bundled"] == "pretrained/ae_bundled"


# --------------------------------------------------------------------------- entries from folders


def test_add_entry_computes_digests_and_reads_the_folder(saved_model, private_manifest):
    entry = _add(saved_model, path=private_manifest, binarization="static")
    on_disk = json.loads(private_manifest.read_text())["models"]["ae_mnist"]
    assert on_disk == entry
    files = entry["hub"]["files"]
    assert set(files) == {"config.json", "model.weights.h5", "model.keras", "metadata.json", "README.md"}
    for name, record in files.items():
        data = (saved_model.directory / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    config = json.loads((saved_model.directory / "config.json").read_text())
    assert entry["model"] == {"class": "AutoEncoder", "registered_name": "keraszoo>AutoEncoder",
                              "variant": "ae", "config": config["config"]}
    assert entry["input"] == {"shape": [28, 28, 1], "dtype": "float32", "value_range": [0.0, 1.0],
                              "binarization": "static"}
    assert entry["recipe"] == RECIPE
    assert entry["metrics"] == {"test_reconstruction_bce": 101.5}
    assert entry["hub"] == {"repo_id": "keraszoo/ae-mnist", "revision": COMMIT, "files": files}
    assert entry["bundled"] is None
    with pytest.raises(ValueError, match="already in"):
        _add(saved_model, path=private_manifest)
    _add(saved_model, path=private_manifest, overwrite=True, metrics={"test_reconstruction_bce": 99.0})
    assert mf.info("ae_mnist")["metrics"] == {"test_reconstruction_bce": 99.0}


def test_add_entry_refuses_a_folder_edited_after_saving(saved_model, private_manifest, tmp_path):
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(saved_model.directory, folder)
    with open(folder / "model.weights.h5", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(IntegrityError, match="model.weights.h5"):
        mf.add_entry("ae_mnist", folder, repo_id="org/x", revision=COMMIT, dataset="mnist", license=LICENSE,
                     paper=PAPER, path=private_manifest)
    assert mf.list_models() == []


def test_add_entry_rejects_a_branch_as_revision(saved_model, private_manifest):
    with pytest.raises(ManifestError, match="revision: 'main' is not a pinned 40-hex commit id"):
        _add(saved_model, path=private_manifest, revision="main")


def test_writes_go_through_the_symlink(saved_model, tmp_path, monkeypatch):
    real = tmp_path / "weights_manifest.json"
    real.write_text(json.dumps({"format_version": 1, "models": {}}))
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    link = pkg / "weights_manifest.json"
    link.symlink_to("../weights_manifest.json")
    monkeypatch.setenv(mf.MANIFEST_ENV, str(link))
    _add(saved_model, path=link)
    assert link.is_symlink()
    assert "ae_mnist" in json.loads(real.read_text())["models"]


def test_bundle_copies_verified_files(saved_model, private_manifest):
    entry = _add(saved_model, path=private_manifest, bundle=True)
    folder = private_manifest.parent / "pretrained" / "ae_mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(schema.BUNDLED_FILES)
    for name in schema.BUNDLED_FILES:
        assert (folder / name).read_bytes() == (saved_model.directory / name).read_bytes()
    assert entry["bundled"] == "pretrained/ae_mnist"
    report = mf.check_bundle_limits()
    assert report["models"] == ["ae_mnist"]
    assert report["total_bytes"] == sum(entry["hub"]["files"][f]["size"] for f in schema.BUNDLED_FILES)
    (folder / "config.json").write_text("{}")
    with pytest.raises(IntegrityError, match="config.json"):
        mf.check_bundle_limits()
    mf.remove_entry("ae_mnist")
    assert not folder.exists() and mf.list_models() == []


def test_bundle_limits_are_enforced(saved_model, private_manifest, monkeypatch):
    weights_size = (saved_model.directory / "model.weights.h5").stat().st_size
    monkeypatch.setattr(bundle, "BUNDLE_FILE_LIMIT", weights_size - 1)
    with pytest.raises(ValueError, match="model.weights.h5 is .* bytes; bundled files must be at most"):
        _add(saved_model, path=private_manifest, bundle=True)
    assert mf.list_models() == []
    monkeypatch.setattr(bundle, "BUNDLE_FILE_LIMIT", 5_000_000)
    _add(saved_model, "first", path=private_manifest, bundle=True)
    one_bundle = mf.check_bundle_limits()["total_bytes"]
    monkeypatch.setattr(bundle, "BUNDLE_TOTAL_LIMIT", 2 * one_bundle - 1)
    with pytest.raises(ValueError, match="would total .* the limit is"):
        _add(saved_model, "second", path=private_manifest, bundle=True)
    monkeypatch.setattr(bundle, "BUNDLE_TOTAL_LIMIT", one_bundle - 1)
    with pytest.raises(ValueError, match="limit"):
        mf.check_bundle_limits()


def test_set_metrics_records_evaluations(saved_model, private_manifest):
    _add(saved_model, path=private_manifest)
    entry = mf.set_metrics("ae_mnist", {"test_bce": 80.25, "test_mse": 5}, evaluation={"command": "keraszoo evaluate ae_mnist"})
    assert entry["metrics"] == {"test_bce": 80.25, "test_mse": 5.0}
    assert entry["evaluation"]["command"] == "keraszoo evaluate ae_mnist"
    assert mf.info("ae_mnist")["metrics"] == {"test_bce": 80.25, "test_mse": 5.0}
    with pytest.raises(ManifestError, match="metrics.test_bce: expected a finite number"):
        mf.set_metrics("ae_mnist", {"test_bce": float("nan")})
    with pytest.raises(UnknownModelError, match="Did you mean 'ae_mnist'"):
        mf.set_metrics("ae_mnsit", {"x": 1.0})


# --------------------------------------------------------------------------- schema errors


@pytest.fixture
def valid_manifest(saved_model):
    entry = mf.build_entry("ae_mnist", saved_model.directory, repo_id="keraszoo/ae-mnist", revision=COMMIT,
                           dataset="mnist", license=LICENSE, paper=PAPER)
    return {"format_version": 1, "models": {"ae_mnist": entry}}


def _set(data, dotted, value):
    keys = dotted.split(".")
    target = data
    for key in keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


@pytest.mark.parametrize("field, value, message", [
    ("format_version", 2, "format_version is 2"),
    ("models", [], "'models' must be an object"),
    ("models.ae_mnist.hub.revision", "main", "hub.revision: 'main' is not a pinned 40-hex commit id"),
    ("models.ae_mnist.hub.repo_id", "no-slash", "hub.repo_id: 'no-slash' is not an 'org/name'"),
    ("models.ae_mnist.recipe.epochs", KeyError, "recipe: missing 'epochs'"),
    ("models.ae_mnist.recipe.seed", "0", "recipe.seed: expected an integer"),
    ("models.ae_mnist.metrics.psnr", "high", "metrics.psnr: expected a finite number"),
    ("models.ae_mnist.input.dtype", "uint8", "input.dtype: expected 'float32'"),
    ("models.ae_mnist.input.binarization", "yes", "input.binarization: expected one of"),
    ("models.ae_mnist.bundled", "../../etc", "bundled: expected null or 'pretrained/ae_mnist'"),
    ("models.ae_mnist.license.data", KeyError, "license.data: expected a non-empty string"),
    ("models.ae_mnist.paper", "arXiv", "paper: expected an object"),
    ("models.ae_mnist.model.registered_name", "Lambda", "model.registered_name: expected 'keraszoo>ClassName'"),
    ("models.ae_mnist.notes", "typed by hand", "unknown keys ['notes']"),
])
def test_schema_errors_name_the_field(valid_manifest, tmp_path, field, value, message):
    data = copy.deepcopy(valid_manifest)
    _set(data, field, value)
    path = tmp_path / "weights_manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as info:
        mf.read_manifest(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_required_file_and_negative_size(valid_manifest):
    data = copy.deepcopy(valid_manifest)
    del data["models"]["ae_mnist"]["hub"]["files"]["model.weights.h5"]
    with pytest.raises(ManifestError, match=r"missing required files \['model.weights.h5'\]"):
        schema.validate_manifest(data)
    data = copy.deepcopy(valid_manifest)
    data["models"]["ae_mnist"]["hub"]["files"]["config.json"]["size"] = -1
    with pytest.raises(ManifestError, match="size: expected a non-negative integer"):
        schema.validate_manifest(data)
    data = copy.deepcopy(valid_manifest)
    data["models"]["ae_mnist"]["hub"]["files"]["config.json"]["sha256"] = "abc"
    with pytest.raises(ManifestError, match="hub.files.config.json.sha256: expected 64 lowercase hex digits, got 'abc'"):
        schema.validate_manifest(data)


def test_invalid_json_and_bad_names(tmp_path, valid_manifest):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        mf.read_manifest(path)
    data = copy.deepcopy(valid_manifest)
    data["models"]["VAE MNIST"] = data["models"].pop("ae_mnist")
    with pytest.raises(ManifestError, match="names are lowercase"):
        schema.validate_manifest(data)


def test_write_manifest_validates_before_touching_the_file(tmp_path, valid_manifest):
    path = tmp_path / "weights_manifest.json"
    mf.write_manifest(valid_manifest, path)
    before = path.read_text()
    assert json.loads(before) == valid_manifest
    broken = copy.deepcopy(valid_manifest)
    broken["models"]["ae_mnist"]["hub"]["revision"] = "v1.0"
    with pytest.raises(ManifestError):
        mf.write_manifest(broken, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["weights_manifest.json"], "no temporary file left behind"


# --------------------------------------------------------------------------- command line


def test_command_line_registers_and_describes_weights(saved_model, private_manifest, tmp_path, capsys):
    from keraszoo.cli import main as cli_main

    def main(argv):
        return cli_main(["manifest", *argv])

    args = ["--manifest", str(private_manifest)]
    assert main(args + ["add", "ae_mnist", str(saved_model.directory), "--repo-id", "keraszoo/ae-mnist",
                        "--revision", COMMIT, "--dataset", "mnist", "--weights-license", "MIT",
                        "--data-license", "CC BY-SA 3.0", "--paper-title", PAPER["title"],
                        "--paper-url", PAPER["url"], "--bundle"]) == 0
    assert "added ae_mnist: keraszoo/ae-mnist@" + COMMIT in capsys.readouterr().out
    assert main(args + ["list"]) == 0
    assert capsys.readouterr().out.split() == ["ae_mnist"]
    results = tmp_path / "eval.json"
    results.write_text(json.dumps({"metrics": {"test_bce": 77.5}, "evaluation": {"command": "keraszoo evaluate"}}))
    assert main(args + ["metrics", "ae_mnist", str(results)]) == 0
    capsys.readouterr()
    assert main(args + ["info", "ae_mnist"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["metrics"] == {"test_bce": 77.5} and described["bundled_available"] is True
    assert main(args + ["check"]) == 0
    assert "OK: 1 model(s), 1 bundled" in capsys.readouterr().out
    assert main(args + ["info", "ae_mnst"]) == 1
    assert "Did you mean 'ae_mnist'" in capsys.readouterr().err
    assert main(args + ["add", "bad", str(saved_model.directory), "--repo-id", "x/y", "--revision", "main",
                        "--dataset", "d", "--weights-license", "MIT", "--data-license", "d",
                        "--paper-title", "t", "--paper-url", "u"]) == 1
    assert "pinned 40-hex commit id" in capsys.readouterr().err


def test_module_entry_point_checks_the_repo_manifest(monkeypatch):
    monkeypatch.delenv(mf.MANIFEST_ENV, raising=False)
    out = subprocess.run([sys.executable, "-m", "keraszoo", "manifest", "check"], capture_output=True, text=True,
                         timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK: ")
