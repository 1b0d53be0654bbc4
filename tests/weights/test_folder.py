"""One verification of a save_pretrained folder, applied alike by loading, registering and publishing."""

import json
import shutil

import pytest

from keraszoo.weights import IntegrityError
from keraszoo.weights import ManifestError
from keraszoo.weights import manifest as mf
from keraszoo.weights.folder import MAX_METADATA_BYTES
from keraszoo.weights.folder import verify_folder
from keraszoo.weights.loader import resolve
from tests.weights.conftest import LICENSE
from tests.weights.conftest import PAPER

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _edit_metadata(folder, change):
    metadata = json.loads((folder / "metadata.json").read_text())
    change(metadata)
    (folder / "metadata.json").write_text(json.dumps(metadata))


def _append_to_card(folder):
    with open(folder / "README.md", "a", encoding="utf-8") as handle:
        handle.write("\nEdited after save_pretrained.\n")


def _drop_size(folder):
    _edit_metadata(folder, lambda m: m["files"]["model.weights.h5"].pop("size"))


def _extra_key(folder):
    _edit_metadata(folder, lambda m: m["files"]["config.json"].update(mtime=0))


def _drop_config_record(folder):
    _edit_metadata(folder, lambda m: m["files"].pop("config.json"))


def _oversized_metadata(folder):
    _edit_metadata(folder, lambda m: m.update(padding="x" * MAX_METADATA_BYTES))


def _no_metadata(folder):
    (folder / "metadata.json").unlink()


CONSUMERS = {
    "verify_folder": verify_folder,
    "keraszoo.load / resolve": resolve,
    "add_entry / build_entry": lambda folder: mf.build_entry(
        "ae_mnist", folder, repo_id="keraszoo/ae-mnist", revision=COMMIT, dataset="mnist", license=LICENSE,
        paper=PAPER),
}


# Before the folder check was shared, the loader hashed only config.json and model.weights.h5,
# skipped the size check of a record without "size", ignored the table's schema, and answered a
# missing metadata.json with another error than push_to_hub / add_entry (which had no size cap).
@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("spoil, error, message", [
    (_append_to_card, IntegrityError, "Integrity check failed for 'README.md'"),
    (_drop_size, ManifestError, "files.model.weights.h5.size: expected a non-negative integer"),
    (_extra_key, ManifestError, r"files.config.json: unknown keys \['mtime'\]"),
    (_drop_config_record, ManifestError, r"missing required files \['config.json'\]"),
    (_oversized_metadata, ValueError, "larger than the 2000000 bytes keraszoo accepts"),
    (_no_metadata, ValueError, "has no metadata.json: expected a folder written by keraszoo.save_pretrained"),
], ids=["edited-card", "no-size", "extra-key", "no-config-record", "oversized-metadata", "no-metadata"])
def test_every_consumer_refuses_a_folder_by_the_same_rule(saved_model, tmp_path, consumer, spoil, error, message):
    folder = tmp_path / "copy"
    shutil.copytree(saved_model.directory, folder)
    spoil(folder)
    with pytest.raises(error, match=message):
        CONSUMERS[consumer](folder)


def test_a_consistent_folder_passes_everywhere(saved_model):
    metadata = verify_folder(saved_model.directory)
    assert set(metadata["files"]) == {"README.md", "config.json", "model.keras", "model.weights.h5"}
    resolved = resolve(saved_model.directory)
    assert resolved.source == "local" and resolved.metadata == metadata
    assert set(resolved.files) == {"config.json", "model.weights.h5", "metadata.json"}
