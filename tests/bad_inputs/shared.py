"""What several bad-input cases share, built once per process: tiny models, their saved folders, small files.

The saved folders live in one temporary folder per process (removed at exit),
which :func:`tests.bad_inputs.registry.normalise` prints as ``<tmp>``.
"""

from __future__ import annotations

import atexit
import functools
import json
import pathlib
import shutil
import tempfile

import numpy as np

from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import register_shared_folder

#: The image shape of every tiny model.
SHAPE = (8, 8, 1)


@functools.cache
def shared_folder() -> pathlib.Path:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="keraszoo-bad-inputs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return register_shared_folder(folder)


@functools.cache
def ae():
    """A tiny dense AutoEncoder, 8x8x1 -> 2."""
    from keraszoo.models import AutoEncoder

    return AutoEncoder(input_shape=SHAPE, latent_dim=2, hidden_dims=(4,), seed=0)


@functools.cache
def vae():
    """A tiny dense VAE, 8x8x1 -> 3."""
    from keraszoo.models import VAE

    return VAE(input_shape=SHAPE, latent_dim=3, hidden_dims=(4,), seed=0)


def _saved(name, model) -> pathlib.Path:
    import keraszoo

    return keraszoo.save_pretrained(model, shared_folder() / name, keras_archive=False)


@functools.cache
def ae_folder() -> pathlib.Path:
    """``ae()`` written by ``keraszoo.save_pretrained`` (a NAME for the command line)."""
    return _saved("ae", ae())


@functools.cache
def vae_folder() -> pathlib.Path:
    return _saved("vae", vae())


def images(n=2, shape=SHAPE, value=0.5, dtype="float32"):
    """``n`` constant images: deterministic values, so that messages quoting them are stable."""
    return np.full((n, *shape), value, dtype=dtype)


def png(path, shape=(8, 8), value=0, mode=None) -> pathlib.Path:
    """A constant PNG (``shape`` (h, w) gray or (h, w, 3) color)."""
    from PIL import Image

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=mode).save(path)
    return path


def copy_folder(source, target) -> pathlib.Path:
    """A copy of a saved-model folder, to tamper with."""
    return pathlib.Path(shutil.copytree(source, target))


def refresh_metadata(folder) -> pathlib.Path:
    """Re-record the sha256 and size of every file of ``folder`` in its metadata.json (after tampering on purpose),
    so that the integrity check passes and the next check down is the one exercised."""
    from keraszoo.weights.folder import folder_records

    folder = pathlib.Path(folder)
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    records = folder_records(folder, exclude=("metadata.json",))
    meta["files"] = {name: record for name, record in records.items() if name in meta["files"]}
    meta_path.write_text(json.dumps(meta, indent=2))
    return folder


def edit_config(folder, edit) -> pathlib.Path:
    """Apply ``edit(config_dict)`` to ``folder/config.json`` and re-record the digests."""
    folder = pathlib.Path(folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return refresh_metadata(folder)


def folder_with(*files):
    """tmp/in/images holding ``files``: ``(name, bytes)``, or for a black PNG ``(name, (h, w[, 3]))``,
    or ``(name, ((h, w, 3), (r, g, b)))`` for a colored one."""

    def make(tmp):
        folder = inputs(tmp) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            elif isinstance(content[0], tuple):  # (shape, pixel value)
                png(folder / name, *content)
            else:
                png(folder / name, content)
        return folder

    return make
