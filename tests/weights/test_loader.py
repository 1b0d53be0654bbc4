"""keraszoo.load: specs, local folders, hf:// repositories, zoo names (bundled / Hub), config safety."""

import json
import shutil

import keras
import numpy as np
import pytest

import keraszoo
from keraszoo.weights import IntegrityError
from keraszoo.weights import UnknownModelError
from keraszoo.weights import manifest as mf
from keraszoo.weights import schema
from keraszoo.weights.hub import HubDownloadError
from keraszoo.weights.hub import check_filename
from keraszoo.weights.hub import check_repo_id
from keraszoo.weights.hub import check_revision
from keraszoo.weights.hub import download_file
from keraszoo.weights.integrity import file_record
from keraszoo.weights.loader import MAX_CONFIG_DEPTH
from keraszoo.weights.loader import check_config_safety
from keraszoo.weights.loader import parse_spec
from keraszoo.weights.loader import resolve
from tests.weights.conftest import LICENSE
from tests.weights.conftest import PAPER
from tests.weights.conftest import commit_saved
from tests.weights.conftest import save_small_model


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model.reconstruct(x))


def _rewrite(folder, filename, data):
    """Replace a file of a saved folder and re-record its digest, as a consistent (but hostile) folder would."""
    (folder / filename).write_bytes(data)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["files"][filename] = file_record(folder / filename)
    (folder / "metadata.json").write_text(json.dumps(metadata))


def _resolve_gets(hub):
    """GETs of model files (hub + CDN), leaving out huggingface_hub's own API calls."""
    return sum(hub.count("GET", name) for name in ("config.json", "metadata.json", "model.weights.h5"))


# --------------------------------------------------------------------------- specs


def test_parse_spec(tmp_path):
    assert parse_spec("vae_mnist") == ("name", "vae_mnist", None)
    assert parse_spec("hf://org/repo") == ("hub", "org/repo", None)
    assert parse_spec("hf://org/repo@v1.0") == ("hub", "org/repo", "v1.0")
    assert parse_spec("hf://org/repo", revision="abc") == ("hub", "org/repo", "abc")
    assert parse_spec(str(tmp_path)) == ("local", tmp_path, None)
    assert parse_spec(tmp_path) == ("local", tmp_path, None)
    with pytest.raises(ValueError, match="Conflicting revisions"):
        parse_spec("hf://org/repo@v1", revision="v2")
    with pytest.raises(ValueError, match="Malformed Hub spec"):
        parse_spec("hf://just-a-name")
    with pytest.raises(ValueError, match="empty revision"):
        parse_spec("hf://org/repo@")
    with pytest.raises(ValueError, match="use 'hf://org/repo'"):
        parse_spec("org/repo")
    with pytest.raises(ValueError, match="No such directory"):
        parse_spec("./missing_folder")
    with pytest.raises(ValueError, match="Expected a model name"):
        parse_spec(42)
    with pytest.raises(ValueError, match="source must be one of"):
        resolve("vae_mnist", source="cdn")


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "release/2024-01", "a" * 40])
def test_valid_revisions_are_accepted(revision):
    assert check_revision(revision) == revision
    assert parse_spec(f"hf://org/repo@{revision}") == ("hub", "org/repo", revision)


@pytest.mark.parametrize("revision", ["../x", "a/../b", "a..b", "/etc", "main/", "a//b", "a\\b", "a b", "v1~1",
                                      "x^", "a:b", "what?", "a*", "[x", "x.lock", "x.", ".hidden", "a/.b", "a@{1}",
                                      "@", "a\x00b", "", None])
def test_revisions_that_could_escape_a_path_are_refused(revision):
    with pytest.raises(ValueError, match="Invalid Hub revision"):
        check_revision(revision)
    if revision:
        with pytest.raises(ValueError, match="Malformed Hub spec .*Invalid Hub revision"):
            parse_spec(f"hf://org/repo@{revision}")
        with pytest.raises(ValueError, match="^Invalid Hub revision"):
            parse_spec("hf://org/repo", revision=revision)


@pytest.mark.parametrize("repo_id", ["org/..", "../etc", "org/a..b", "org--x/y", "org/x--y", "org", "org/repo/x",
                                     "/org/repo", "org/.hidden", "org/re po", 3])
def test_repo_ids_that_could_escape_a_path_are_refused(repo_id):
    with pytest.raises(ValueError, match="Invalid Hub repository id"):
        check_repo_id(repo_id)


@pytest.mark.parametrize("filename", ["../x.json", "a/../../x", "/etc/passwd", "a//b", "./x", "x/", "", "a\\b",
                                      "a\nb", None])
def test_file_names_that_could_escape_the_cache_are_refused_before_any_request(fake_hub, filename):
    with pytest.raises(ValueError, match="Invalid file name"):
        download_file("org/repo", filename)
    assert fake_hub.requests == [], "refused before any request"
    assert check_filename("sub/model.weights.h5") == "sub/model.weights.h5"


def test_download_file_checks_repo_id_and_revision_before_any_request(fake_hub):
    with pytest.raises(ValueError, match="Invalid Hub repository id"):
        download_file("org/a..b", "config.json")
    with pytest.raises(ValueError, match="Invalid Hub revision"):
        download_file("org/repo", "config.json", revision="main/../../x")
    assert fake_hub.requests == []
    assert not fake_hub.cache_dir.exists(), "nothing written"


# --------------------------------------------------------------------------- local folders


def test_load_local_folder_is_ready_to_fine_tune(saved_model):
    model = keraszoo.load(saved_model.directory)
    assert type(model).__name__ == "AutoEncoder" and model.latent_dim == 4
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.encode(saved_model.x)), saved_model.codes, atol=1e-5)
    assert model.optimizer is not None, "load() returns a compiled model"
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(saved_model.x, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after)), "fine-tuning updated the weights"


def test_local_folder_with_changed_weights_is_refused(saved_model, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(saved_model.directory, folder)
    data = bytearray((folder / "model.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model.weights.h5").write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        keraszoo.load(folder)
    assert info.value.filename == "model.weights.h5"
    assert info.value.expected == json.loads((folder / "metadata.json").read_text())["files"]["model.weights.h5"]["sha256"]
    assert (folder / "model.weights.h5").exists(), "user folders are never deleted"


def test_folder_without_metadata_is_not_a_pretrained_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no metadata.json"):
        keraszoo.load(tmp_path)
    with pytest.raises(ValueError, match="does not apply to a local directory"):
        keraszoo.load(tmp_path, source="hub")


def test_weights_of_another_architecture_are_refused(saved_model, tmp_path):
    other = save_small_model(tmp_path / "latent8", latent_dim=8)
    folder = tmp_path / "mixed"
    shutil.copytree(saved_model.directory, folder)
    _rewrite(folder, "model.weights.h5", (other.directory / "model.weights.h5").read_bytes())
    with pytest.raises(ValueError, match="do not fit the architecture"):
        keraszoo.load(folder)


def test_parameter_count_is_checked(saved_model, tmp_path):
    folder = tmp_path / "count"
    shutil.copytree(saved_model.directory, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["parameter_count"] += 1
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="metadata.json records"):
        keraszoo.load(folder)


# --------------------------------------------------------------------------- config safety


def _with_config(saved_model, tmp_path, mutate):
    folder = tmp_path / "hostile"
    shutil.copytree(saved_model.directory, folder)
    config = json.loads((folder / "config.json").read_text())
    mutate(config)
    _rewrite(folder, "config.json", json.dumps(config).encode())
    return folder


def test_config_naming_foreign_modules_is_refused_before_deserializing(saved_model, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(keras.saving, "deserialize_keras_object", lambda *a, **k: calls.append(a))

    def inject(config):
        config["config"]["decoder"] = {"module": "os", "class_name": "system", "config": {"command": "echo pwned"},
                                       "registered_name": None}

    folder = _with_config(saved_model, tmp_path, inject)
    with pytest.raises(ValueError, match=r"module 'os' \(class 'system'\) at config.config.decoder"):
        keraszoo.load(folder)
    assert calls == [], "nothing was deserialized"


@pytest.mark.parametrize("config, message", [
    ({"class_name": "Dense", "module": "keras.layers", "config": {}, "registered_name": None},
     "not a keraszoo model"),
    ({"class_name": "AE", "module": "evil", "config": {}, "registered_name": "keraszoo>AE"},
     "module 'evil'"),
    ({"class_name": "AE", "module": "keraszoo.models", "registered_name": "keraszoo>AE",
      "config": {"encoder": {"class_name": "Lambda", "module": "keras.layers", "config": {}}}},
     "a Lambda"),
    ({"class_name": "AE", "module": "keraszoo.models", "registered_name": "keraszoo>AE",
      "config": {"layers": [{"class_name": "X", "module": "keras", "registered_name": "mypkg>X"}]}},
     r"registered name 'mypkg>X' at config.config.layers\[0\]"),
    ({"class_name": "AE", "module": "keraszoo.models", "registered_name": "keraszoo>AE",
      "config": {"fn": {"class_name": "__lambda__", "config": {"code": "..."}}}},
     "a __lambda__"),
    ({"class_name": "AE", "module": "kerasx.models", "registered_name": "keraszoo>AE", "config": {}},
     "module 'kerasx.models'"),
    (["not", "a", "dict"], "not a serialized Keras object"),
])
def test_check_config_safety(config, message):
    with pytest.raises(ValueError, match=message):
        check_config_safety(config)


def test_real_configs_pass_the_safety_check(saved_model):
    check_config_safety(json.loads((saved_model.directory / "config.json").read_text()))


def _deep_config_folder(saved_model, tmp_path, depth):
    """A saved folder whose config.json nests ``depth`` objects under ``config.junk`` (digests re-recorded)."""
    folder = tmp_path / f"deep{depth}"
    shutil.copytree(saved_model.directory, folder)
    config = json.loads((folder / "config.json").read_text())
    config["config"]["junk"] = "@"
    text = json.dumps(config).replace('"@"', '{"a": ' * depth + "0" + "}" * depth)  # json.dumps would recurse
    _rewrite(folder, "config.json", text.encode())
    return folder


@pytest.mark.parametrize("depth", [990, 5000, 100_000])
def test_a_config_nested_too_deep_is_refused_before_python_recurses(saved_model, tmp_path, monkeypatch, depth):
    """990 levels made the safety walk raise RecursionError; deeper ones break Python's JSON parser first."""
    calls = []
    monkeypatch.setattr(keras.saving, "deserialize_keras_object", lambda *a, **k: calls.append(a))
    folder = _deep_config_folder(saved_model, tmp_path, depth)
    with pytest.raises(ValueError, match=rf"Refusing to load config\.json of {folder}: it nests objects and lists "
                                         rf"more than {MAX_CONFIG_DEPTH} levels deep"):
        keraszoo.load(folder)
    assert calls == []


def test_the_depth_bound_leaves_room_for_real_configs():
    nested = 0
    for _ in range(MAX_CONFIG_DEPTH - 1):
        nested = {"a": nested}
    config = {"class_name": "AE", "module": "keraszoo.models", "registered_name": "keraszoo>AE", "config": nested}
    check_config_safety(config)  # MAX_CONFIG_DEPTH levels in all
    with pytest.raises(ValueError, match=rf"more than {MAX_CONFIG_DEPTH} levels deep"):
        check_config_safety({**config, "config": {"b": nested}})


def test_any_json_file_nested_too_deep_is_a_clear_error(tmp_path):
    """metadata.json, the manifest ...: folder.read_json turns the parser's RecursionError into one line."""
    from keraszoo.weights.folder import read_json

    path = tmp_path / "metadata.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"metadata\.json \(.*\) is nested too deeply"):
        read_json(path, "metadata.json")


@pytest.mark.parametrize("where", ["hash", "verify"])
def test_a_directory_where_a_file_belongs_is_said_to_be_a_directory(tmp_path, where):
    from keraszoo.weights.integrity import verify_file

    (tmp_path / "README.md").mkdir()
    with pytest.raises(IsADirectoryError, match=r"README\.md is a directory, not a file"):
        if where == "hash":
            file_record(tmp_path / "README.md")
        else:
            verify_file(tmp_path / "README.md", "0" * 64, filename="README.md")
    with pytest.raises(FileNotFoundError, match=r"absent\.md does not exist"):
        file_record(tmp_path / "absent.md")


# --------------------------------------------------------------------------- hf:// repositories


def test_hub_round_trip_and_warm_cache(fake_hub, saved_model):
    commit_saved(fake_hub, saved_model, "keraszoo-test/ae")
    model = keraszoo.load("hf://keraszoo-test/ae")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
    assert fake_hub.count("GET", "model.weights.h5", role="cdn") == 1
    gets = _resolve_gets(fake_hub)
    assert gets == 3
    assert any(p.name.startswith("models--keraszoo-test--ae") for p in fake_hub.cache_dir.iterdir())
    fake_hub.clear_log()
    again = keraszoo.load("hf://keraszoo-test/ae")
    np.testing.assert_allclose(_outputs(again, saved_model.x), saved_model.reconstruction, atol=1e-6)
    assert _resolve_gets(fake_hub) == 0, "the second load downloads nothing"
    # Only the branch -> commit lookup of metadata.json; the other files are pinned to that commit.
    assert fake_hub.count("HEAD") == 1


def test_pinned_revision_is_the_one_fetched(fake_hub, saved_model, tmp_path):
    first = commit_saved(fake_hub, saved_model, "keraszoo-test/ae")
    newer_model = keraszoo.load(saved_model.directory)  # same architecture, other weights:
    for w in newer_model.weights:
        w.assign(w * 0.5)
    keraszoo.save_pretrained(newer_model, tmp_path / "v2b")
    second = fake_hub.commit_folder("keraszoo-test/ae", tmp_path / "v2b", message="v2")
    assert first != second

    old = keraszoo.load(f"hf://keraszoo-test/ae@{first}")
    np.testing.assert_allclose(_outputs(old, saved_model.x), saved_model.reconstruction, atol=1e-6)
    resolve_paths = [r.path for r in fake_hub.requests if r.role == "hub" and "/resolve/" in r.path]
    assert resolve_paths and all(f"/resolve/{first}/" in p for p in resolve_paths)

    latest = keraszoo.load("hf://keraszoo-test/ae")  # main -> second
    np.testing.assert_allclose(_outputs(latest, saved_model.x), _outputs(newer_model, saved_model.x), atol=1e-6)
    also_old = keraszoo.load("hf://keraszoo-test/ae", revision=first)
    np.testing.assert_allclose(_outputs(also_old, saved_model.x), saved_model.reconstruction, atol=1e-6)
    assert resolve("hf://keraszoo-test/ae").revision == second


def test_repository_inconsistent_with_its_metadata_is_refused(fake_hub, saved_model, tmp_path):
    folder = tmp_path / "inconsistent"
    shutil.copytree(saved_model.directory, folder)
    data = bytearray((folder / "model.weights.h5").read_bytes())
    data[-64] ^= 0x01
    (folder / "model.weights.h5").write_bytes(bytes(data))  # metadata.json still has the old digest
    fake_hub.commit_folder("keraszoo-test/ae", folder)
    with pytest.raises(IntegrityError, match="model.weights.h5") as info:
        keraszoo.load("hf://keraszoo-test/ae")
    assert info.value.removed
    assert "hf://keraszoo-test/ae@" in str(info.value)


def test_hub_not_found_errors_are_clear_and_not_retried(fake_hub, saved_model):
    with pytest.raises(HubDownloadError, match="Repository 'nobody/nothing' was not found"):
        resolve("hf://nobody/nothing")
    commit_saved(fake_hub, saved_model, "keraszoo-test/ae")
    with pytest.raises(HubDownloadError, match="Revision 'v9' does not exist"):
        resolve("hf://keraszoo-test/ae@v9")
    fake_hub.create_repo("keraszoo-test/empty")
    fake_hub.clear_log()
    with pytest.raises(HubDownloadError, match="has no file 'metadata.json'"):
        resolve("hf://keraszoo-test/empty")
    assert fake_hub.count("HEAD") == 1, "a missing file is not retried"


# --------------------------------------------------------------------------- zoo names


def _register(fake_hub, saved_model, manifest_path, name="ae_mnist", **kwargs):
    oid = commit_saved(fake_hub, saved_model, "keraszoo-test/ae-mnist")
    mf.add_entry(name, saved_model.directory, repo_id="keraszoo-test/ae-mnist", revision=oid, dataset="mnist",
                 license=LICENSE, paper=PAPER, path=manifest_path, **kwargs)
    return oid


def test_name_without_bundle_comes_from_the_pinned_hub_commit(fake_hub, saved_model, private_manifest):
    oid = _register(fake_hub, saved_model, private_manifest)
    fake_hub.commit("keraszoo-test/ae-mnist", {"config.json": b"{}"}, message="later, broken commit on main")
    model = keraszoo.load("ae_mnist")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
    paths = [r.path for r in fake_hub.requests if "/resolve/" in r.path]
    assert paths and all(f"/resolve/{oid}/" in p for p in paths)
    with pytest.raises(ValueError, match="not bundled"):
        keraszoo.load("ae_mnist", source="bundled")
    with pytest.raises(ValueError, match=f"pinned to revision {oid}"):
        keraszoo.load("ae_mnist", revision="main")
    with pytest.raises(UnknownModelError, match="Did you mean 'ae_mnist'"):
        keraszoo.load("ae_mnst")


def test_manifest_digest_is_authoritative_for_names(fake_hub, saved_model, private_manifest, tmp_path):
    _register(fake_hub, saved_model, private_manifest)
    data = json.loads(private_manifest.read_text())
    data["models"]["ae_mnist"]["hub"]["files"]["model.weights.h5"]["sha256"] = "0" * 64
    private_manifest.write_text(json.dumps(data))
    with pytest.raises(IntegrityError) as info:
        keraszoo.load("ae_mnist")
    assert info.value.expected == "0" * 64
    assert info.value.actual == file_record(saved_model.directory / "model.weights.h5")["sha256"]


def test_bundled_copy_is_used_offline_first(fake_hub, saved_model, private_manifest):
    _register(fake_hub, saved_model, private_manifest, bundle=True)
    fake_hub.clear_log()
    model = keraszoo.load("ae_mnist")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
    assert fake_hub.requests == [], "the bundled copy needs no network"
    info = resolve("ae_mnist")
    assert info.source == "bundled" and info.directory == private_manifest.parent / "pretrained" / "ae_mnist"
    hub_copy = resolve("ae_mnist", source="hub")
    assert hub_copy.source == "hub" and fake_hub.count("GET", "model.weights.h5") == 1
    # A corrupted bundle is refused, not loaded.
    (info.directory / "model.weights.h5").write_bytes(b"garbage")
    with pytest.raises(IntegrityError, match="bundled copy of 'ae_mnist'"):
        keraszoo.load("ae_mnist")


def test_entry_not_yet_on_the_hub_loads_from_its_bundle_only(saved_model, private_manifest):
    """revision null = bundled copy, not pushed yet: loads offline, and source='hub' says why it cannot."""
    mf.add_entry("ae_mnist", saved_model.directory, repo_id="keraszoo/ae-mnist", revision=None, dataset="mnist",
                 license=LICENSE, paper=PAPER, path=private_manifest, bundle=True)
    model = keraszoo.load("ae_mnist")
    np.testing.assert_allclose(_outputs(model, saved_model.x), saved_model.reconstruction, atol=1e-6)
    with pytest.raises(ValueError, match="not been published on the Hub yet"):
        keraszoo.load("ae_mnist", source="hub")
    data = json.loads(private_manifest.read_text())
    data["models"]["ae_mnist"]["bundled"] = None
    with pytest.raises(schema.ManifestError, match="must have a bundled copy"):
        schema.validate_manifest(data)
