"""save_pretrained (the folder, file by file) and push_to_hub (against the loopback Hub)."""

import hashlib
import json
import shutil

import keras
import numpy as np
import pytest
import yaml

import keraszoo
from keraszoo.weights import IntegrityError
from keraszoo.weights import ManifestError
from tests.weights.conftest import PAPER
from tests.weights.conftest import RECIPE
from tests.weights.conftest import make_model
from tests.weights.conftest import save_small_model

PNG = bytes.fromhex("89504e470d0a1a0a") + b"fake png payload"


def _card_header(text):
    assert text.startswith("---\n")
    header, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(header), body


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model.reconstruct(x))


def test_folder_layout_and_metadata(saved_model):
    folder = saved_model.directory
    names = sorted(p.name for p in folder.iterdir())
    # .keraszoo.json: the marker of the job that wrote the folder (keraszoo.output_folder); hidden, not in the table
    assert names == [".keraszoo.json", "README.md", "config.json", "metadata.json", "model.keras", "model.weights.h5"]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["format"] == "keraszoo-pretrained" and metadata["format_version"] == 1
    assert metadata["keraszoo_version"] == keraszoo.__version__
    assert metadata["keras_version"] == keras.__version__
    assert metadata["tensorflow_version"]
    assert metadata["parameter_count"] == saved_model.parameter_count
    assert metadata["model"] == {"class": "AutoEncoder", "registered_name": "keraszoo>AutoEncoder", "variant": "ae",
                                 "latent_dim": 4, "architecture": "dense", "is_generative": False}
    assert metadata["input"] == {"image_shape": [28, 28, 1], "dtype": "float32", "value_range": [0.0, 1.0]}
    assert metadata["metrics"] == {"test_reconstruction_bce": 101.5}
    assert metadata["recipe"] == RECIPE
    assert metadata["dataset"] == {"name": "mnist"}
    assert metadata["license"] == {"weights": "MIT", "data": "CC BY-SA 3.0"}
    assert metadata["paper"] == PAPER
    assert metadata["date_saved"].endswith("+00:00")
    # sha256 + size of every other file, computed from the bytes on disk.
    assert set(metadata["files"]) == set(names) - {"metadata.json", ".keraszoo.json"}
    for name, record in metadata["files"].items():
        data = (folder / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_config_json_is_the_serialized_model(saved_model):
    config = json.loads((saved_model.directory / "config.json").read_text())
    assert config["registered_name"] == "keraszoo>AutoEncoder"
    assert "compile_config" not in config
    assert config["config"]["latent_dim"] == 4
    rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
    rebuilt.load_weights(str(saved_model.directory / "model.weights.h5"))
    np.testing.assert_allclose(_outputs(rebuilt, saved_model.x), saved_model.reconstruction, atol=1e-6)


def test_model_card_has_the_hub_header_and_results(saved_model):
    header, body = _card_header((saved_model.directory / "README.md").read_text())
    assert header["library_name"] == "keras"
    assert header["license"] == "mit"
    assert {"keraszoo", "autoencoder", "ae"} <= set(header["tags"])
    assert header["datasets"] == ["mnist"]
    assert header["metrics"] == ["test_reconstruction_bce"]
    assert "| test_reconstruction_bce | 101.5000 |" in body
    assert RECIPE["command"] in body
    assert PAPER["title"] in body and PAPER["url"] in body
    assert "CC BY-SA 3.0" in body
    assert "![" not in body, "no image to embed"
    assert "`model.keras` a Keras archive" in body


def test_notes_are_kept_in_the_metadata_and_shown_in_the_card(tmp_path, saved_model):
    assert json.loads((saved_model.directory / "metadata.json").read_text())["notes"] == []
    assert "## Notes" not in (saved_model.directory / "README.md").read_text()
    notes = ["Measured on a JPEG re-encode.", "The 86.75-nat target was not reached: 87.1 nats."]
    save_small_model(tmp_path / "noted", notes=notes)
    assert json.loads((tmp_path / "noted" / "metadata.json").read_text())["notes"] == notes
    _, body = _card_header((tmp_path / "noted" / "README.md").read_text())
    section = body.split("## Notes", 1)[1].split("## Usage", 1)[0]
    assert [line[2:] for line in section.strip().splitlines()] == notes
    for bad in (["ok", ""], [3], {"a": "b"}):
        with pytest.raises(ValueError, match="notes must be"):
            save_small_model(tmp_path / "bad", notes=bad)


def test_images_in_the_folder_are_embedded_and_hashed(tmp_path):
    folder = tmp_path / "with_images"
    folder.mkdir()
    (folder / "reconstructions.png").write_bytes(PNG)
    (folder / "samples.png").write_bytes(PNG + b"2")
    save_small_model(folder, variant="vae")
    readme = (folder / "README.md").read_text()
    assert "](reconstructions.png)" in readme and "](samples.png)" in readme
    header, _ = _card_header(readme)
    assert "generative" in header["tags"] and "vae" in header["tags"]
    files = json.loads((folder / "metadata.json").read_text())["files"]
    assert files["samples.png"] == {"sha256": hashlib.sha256(PNG + b"2").hexdigest(), "size": len(PNG) + 1}


def test_keras_archive_and_keras_directory_load_without_keraszoo_loader(saved_model):
    archive = keras.saving.load_model(str(saved_model.directory / "model.keras"))
    np.testing.assert_allclose(_outputs(archive, saved_model.x), saved_model.reconstruction, atol=1e-6)
    as_dir = keras.saving.load_model(str(saved_model.directory))  # Keras' own directory format
    np.testing.assert_allclose(_outputs(as_dir, saved_model.x), saved_model.reconstruction, atol=1e-6)


def test_resaving_replaces_files_and_can_skip_the_archive(tmp_path):
    folder = tmp_path / "m"
    save_small_model(folder)
    keraszoo.save_pretrained(make_model(), folder, keras_archive=False)
    assert not (folder / "model.keras").exists()
    metadata = json.loads((folder / "metadata.json").read_text())
    assert "model.keras" not in metadata["files"]
    assert metadata["metrics"] == {} and metadata["recipe"] is None
    assert "model.keras" not in (folder / "README.md").read_text()


def test_save_pretrained_rejects_bad_input(tmp_path):
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="expects a keraszoo model"):
        keraszoo.save_pretrained(plain, tmp_path / "a")
    with pytest.raises(ValueError, match="expects a keraszoo model"):
        keraszoo.save_pretrained("not a model", tmp_path / "b")
    model = make_model()
    with pytest.raises(ManifestError, match="metrics.bce: expected a finite number"):
        keraszoo.save_pretrained(model, tmp_path / "c", metrics={"bce": float("inf")})
    with pytest.raises(ManifestError, match="recipe: missing 'hardware'"):
        keraszoo.save_pretrained(model, tmp_path / "d", recipe={k: v for k, v in RECIPE.items() if k != "hardware"})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        keraszoo.save_pretrained(model, tmp_path / "file")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


# --------------------------------------------------------------------------- push_to_hub


def test_push_folder_creates_repo_commits_and_serves_it_back(fake_hub, saved_model):
    oid = keraszoo.push_to_hub(saved_model.directory, "keraszoo-test/ae", token=fake_hub.token)
    assert oid == fake_hub.head("keraszoo-test/ae")
    assert len(oid) == 40
    served = fake_hub.files("keraszoo-test/ae", oid)
    assert set(served) == {".gitattributes"} | set(saved_model.files())
    for name, data in saved_model.files().items():
        assert served[name] == data, name
    assert fake_hub.count("POST", "create") == 1
    assert fake_hub.count("POST", "validate-yaml") == 1
    assert fake_hub.count("POST", "main") == 2  # preupload/main + commit/main
    # Pushing again: unchanged files are skipped, no new commit; the head is returned.
    assert keraszoo.push_to_hub(saved_model.directory, "keraszoo-test/ae", token=fake_hub.token) == oid
    # The pushed folder loads back through hf://, pinned to the returned commit.
    model = keraszoo.load(f"hf://keraszoo-test/ae@{oid}")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)


def test_push_a_model_directly_and_update_it(fake_hub, tmp_path):
    model = make_model(variant="vae")
    first = keraszoo.push_to_hub(model, "keraszoo-test/vae", token=fake_hub.token, metrics={"elbo": -120.0})
    metadata = json.loads(fake_hub.file("keraszoo-test/vae", "metadata.json"))
    assert metadata["metrics"] == {"elbo": -120.0}
    assert "hf://keraszoo-test/vae" in fake_hub.file("keraszoo-test/vae", "README.md").decode()
    second = keraszoo.push_to_hub(model, "keraszoo-test/vae", token=fake_hub.token, metrics={"elbo": -110.0},
                                  commit_message="better weights")
    assert second != first and fake_hub.head("keraszoo-test/vae") == second
    assert fake_hub.repos["keraszoo-test/vae"].commits[second].parent == first
    assert fake_hub.repos["keraszoo-test/vae"].commits[second].message == "better weights"
    old = json.loads(fake_hub.file("keraszoo-test/vae", "metadata.json", revision=first))
    assert old["metrics"] == {"elbo": -120.0}


def test_push_refuses_an_edited_folder_before_any_request(fake_hub, saved_model, tmp_path):
    folder = tmp_path / "edited"
    shutil.copytree(saved_model.directory, folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(IntegrityError, match="config.json"):
        keraszoo.push_to_hub(folder, "keraszoo-test/ae", token=fake_hub.token)
    assert fake_hub.requests == []


def test_push_without_valid_token_fails_clearly(fake_hub, saved_model):
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as info:
        keraszoo.push_to_hub(saved_model.directory, "keraszoo-test/ae", token="hf_wrong")
    assert info.value.response.status_code == 401
    assert "keraszoo-test/ae" not in fake_hub.repos


def test_plain_keras_load_model_from_the_hub(fake_hub, saved_model):
    """keras.saving.load_model("hf://org/repo") (snapshot_download) reads a pushed folder."""
    keraszoo.push_to_hub(saved_model.directory, "keraszoo-test/plain", token=fake_hub.token)
    __import__("keraszoo.models")  # registers the classes, as the model card says
    model = keras.saving.load_model("hf://keraszoo-test/plain")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
