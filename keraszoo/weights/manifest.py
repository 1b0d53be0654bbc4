"""The weights manifest: one source of truth for every published keraszoo weight.

The manifest is ``weights_manifest.json`` at the top of the repository; the
package reads it as ``keraszoo/weights_manifest.json`` (a relative symlink in a
source checkout, a regular file in an installed wheel). Its layout is
described (and checked) in :mod:`keraszoo.weights.schema`.

Entries are never typed by hand: :func:`add_entry` builds one from a folder
written by :func:`keraszoo.save_pretrained` (digests and sizes are computed) and
:func:`set_metrics` records what the evaluation command measured. The bundled
copies are handled in :mod:`keraszoo.weights.bundle`, the folder check in
:mod:`keraszoo.weights.folder`.

This module must stay importable without TensorFlow, Keras or huggingface_hub:
``keraszoo.list_models()`` and ``keraszoo.info()`` are answered from here.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import fnmatch
import json
import os
import shutil
from pathlib import Path

from keraszoo.utils import atomic_write_text
from keraszoo.weights import bundle as _bundle
from keraszoo.weights.folder import folder_records
from keraszoo.weights.folder import read_json
from keraszoo.weights.folder import verify_folder
from keraszoo.weights.schema import ManifestError
from keraszoo.weights.schema import validate_entry
from keraszoo.weights.schema import validate_manifest
from keraszoo.weights.schema import validate_metrics

__all__ = [
    "MANIFEST_ENV", "UnknownModelError", "manifest_path", "read_manifest", "write_manifest",
    "list_models", "info", "get_entry", "build_entry", "add_entry", "remove_entry", "set_metrics",
    "bundle_root", "bundled_dir", "check_bundle_limits",
]

#: Environment variable that points keraszoo at another manifest file (tests, mirrors).
MANIFEST_ENV = "KERASZOO_MANIFEST"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_PACKAGED_MANIFEST = _PACKAGE_DIR / "weights_manifest.json"
_REPO_MANIFEST = _PACKAGE_DIR.parent / "weights_manifest.json"


class UnknownModelError(ValueError, KeyError):
    """A model name is not in the manifest. The message lists the closest known names."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- paths


def manifest_path() -> Path:
    """Return the path of the manifest keraszoo reads.

    In order: ``$KERASZOO_MANIFEST`` when set; the packaged
    ``keraszoo/weights_manifest.json``; the repository's top-level
    ``weights_manifest.json`` (source checkouts without the symlink).
    """
    override = os.environ.get(MANIFEST_ENV)
    if override:
        return Path(override).expanduser()
    if _PACKAGED_MANIFEST.exists():
        return _PACKAGED_MANIFEST
    if _REPO_MANIFEST.exists():
        return _REPO_MANIFEST
    raise FileNotFoundError(
        "keraszoo cannot find its weights manifest: looked for "
        f"{_PACKAGED_MANIFEST} and {_REPO_MANIFEST}. The installation is incomplete; "
        "reinstall keraszoo."
    )


def _resolve(path) -> Path:
    return Path(path) if path is not None else manifest_path()


def bundle_root(path=None) -> Path:
    """Directory that the manifest's ``bundled`` paths are relative to.

    It is the folder that holds the manifest file (``keraszoo/`` for the packaged
    manifest), except for the repository-root fallback, whose bundles live in the
    package folder.
    """
    absolute = Path(os.path.abspath(_resolve(path)))
    if absolute == Path(os.path.abspath(_REPO_MANIFEST)):
        return _PACKAGE_DIR
    return absolute.parent


def bundled_dir(name, *, path=None):
    """Return the folder of the bundled copy of ``name``, or None when it is not bundled."""
    return _bundle_folder(get_entry(name, path=path), path)


def _bundle_folder(entry, path):
    return bundle_root(path) / entry["bundled"] if entry["bundled"] else None


def check_bundle_limits(*, path=None, verify=True) -> dict:
    """Check every bundled weight in the manifest: present, within the size limits, digests match.

    See :func:`keraszoo.weights.bundle.check_bundles` for the report and the errors.
    """
    path = _resolve(path)
    return _bundle.check_bundles(read_manifest(path)["models"], bundle_root(path), verify=verify)


# --------------------------------------------------------------------------- reading


def read_manifest(path=None) -> dict:
    """Read and validate the manifest; return it as a dict.

    Raises:
        ManifestError: the file is not valid JSON or does not follow the schema.
            The message names the file and the offending field.
    """
    path = _resolve(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"Weights manifest not found: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path} is not valid JSON: {err}") from None
    validate_manifest(data, source=str(path))
    return data


# --------------------------------------------------------------------------- queries


def get_entry(name, *, path=None) -> dict:
    """Return the manifest entry for ``name`` (a deep copy).

    Raises:
        UnknownModelError: ``name`` is not in the manifest; the message lists the
            closest known names.
    """
    models = read_manifest(path)["models"]
    if name in models:
        return copy.deepcopy(models[name])
    raise _unknown_model(name, models)


def _unknown_model(name, models) -> UnknownModelError:
    """The error for a ``name`` that is not in ``models``, naming the closest known names."""
    if not isinstance(name, str):
        return UnknownModelError(f"Model names are strings, got {type(name).__name__} {name!r}.")
    if not models:
        return UnknownModelError(
            f"Unknown pretrained model {name!r}: no pretrained weights are published in this "
            "version of keraszoo yet (the manifest is empty). Load a repository with "
            "keraszoo.load('hf://org/repo') or a local folder written by keraszoo.save_pretrained()."
        )
    close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownModelError(
        f"Unknown pretrained model {name!r}.{hint} Known models: {', '.join(sorted(models))}. "
        "See keraszoo.list_models()."
    )


def list_models(pattern=None, *, path=None) -> list:
    """Names of the published pretrained weights, sorted.

    Args:
        pattern: optional shell-style filter, e.g. ``"vae*"`` or ``"*_mnist"``.

    Does not import TensorFlow.
    """
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError(f"list_models(pattern) takes a shell-style pattern such as 'vae*', "
                        f"got {type(pattern).__name__} {pattern!r}.")
    names = sorted(read_manifest(path)["models"])
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def info(name, *, path=None) -> dict:
    """Describe one published weight: its manifest entry plus ``name`` and ``bundled_available``.

    Does not import TensorFlow.

    Raises:
        UnknownModelError: with the closest known names.
    """
    entry = get_entry(name, path=path)
    result = {"name": name, **entry}
    result["bundled_available"] = _bundle.is_complete(_bundle_folder(entry, path))
    return result


# --------------------------------------------------------------------------- writing


def write_manifest(data, path=None) -> Path:
    """Validate ``data`` and write it as the manifest, atomically.

    The write goes to the real file behind a symlink (so the packaged symlink
    ``keraszoo/weights_manifest.json -> ../weights_manifest.json`` survives).
    Returns the path written.
    """
    path = _resolve(path)
    validate_manifest(data, source=str(path))
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def build_entry(name, directory, *, repo_id, revision, dataset, license, paper, recipe=None, metrics=None,
                binarization="none", bundled=False, description=None) -> dict:
    """Build (and validate) a manifest entry from a ``save_pretrained`` folder.

    Digests and sizes are computed from the files; the model description and the
    input contract come from ``config.json`` / ``metadata.json``.

    Args:
        name: manifest key, e.g. ``"vae_mnist"``.
        directory: folder written by :func:`keraszoo.save_pretrained`.
        repo_id: Hub repository the folder was pushed to (``"org/name"``).
        revision: the commit id returned by :func:`keraszoo.push_to_hub` (40 hex digits).
        dataset: ``{"name": "mnist", ...}`` (or just the dataset name).
        license: ``{"weights": "MIT", "data": "CC BY-SA 3.0"}``.
        paper: ``{"title": ..., "url": ...}`` of the paper the variant comes from.
        recipe: training recipe; defaults to the one recorded in ``metadata.json``.
        metrics: measured metrics; defaults to those recorded in ``metadata.json``.
        binarization: ``"none"``, ``"static"`` or ``"dynamic"`` (how inputs were binarized in training).
        bundled: whether a copy ships inside the package (``keraszoo/pretrained/<name>/``).
    """
    directory = Path(directory)
    metadata = verify_folder(directory)
    config = read_json(directory / "config.json", "config.json")
    if not isinstance(config, dict) or "config" not in config:
        raise ValueError(f"{directory / 'config.json'} is not a serialized Keras object.")
    model_meta = metadata.get("model", {}) if isinstance(metadata.get("model"), dict) else {}
    if isinstance(dataset, str):
        dataset = {"name": dataset}
    recorded = dict(metadata.get("input") or {})
    input_contract = {"shape": recorded.get("image_shape", recorded.get("shape")), "dtype": recorded.get("dtype"),
                      "value_range": recorded.get("value_range"), "binarization": binarization}
    from keraszoo.version import __version__

    entry = {
        "model": {
            "class": config.get("class_name"),
            "registered_name": config.get("registered_name"),
            "variant": model_meta.get("variant"),
            "config": config["config"],
        },
        "hub": {"repo_id": repo_id, "revision": revision, "files": folder_records(directory)},
        "bundled": f"pretrained/{name}" if bundled else None,
        "dataset": copy.deepcopy(dataset),
        "input": input_contract,
        "recipe": copy.deepcopy(recipe if recipe is not None else metadata.get("recipe")),
        "metrics": copy.deepcopy(metrics if metrics is not None else (metadata.get("metrics") or {})),
        "license": copy.deepcopy(license),
        "paper": copy.deepcopy(paper),
        "keraszoo_version": __version__,
        "created": datetime.date.today().isoformat(),
    }
    if description:
        entry["description"] = str(description)
    validate_entry(name, entry, source=f"new entry from {directory}")
    return entry


def add_entry(name, directory, *, repo_id, revision, dataset, license, paper, recipe=None, metrics=None,
              binarization="none", bundle=False, description=None, overwrite=False, path=None) -> dict:
    """Register the weights in a ``save_pretrained`` folder in the manifest.

    Builds the entry with :func:`build_entry`; with ``bundle=True`` also copies
    ``config.json``, ``model.weights.h5``, ``metadata.json``, ``README.md`` and the
    card's pictures (``reconstructions.png``, ``samples.png``) when present to
    ``<bundle_root>/pretrained/<name>/`` after checking the size limits
    (each file <= 6 MB, all bundles together <= 80 MB). Then writes the manifest.

    Returns:
        the new entry.

    Raises:
        ValueError: ``name`` exists and ``overwrite`` is false, or a limit is exceeded.
        ManifestError: the entry does not follow the schema.
    """
    path = _resolve(path)
    data = read_manifest(path)
    if name in data["models"] and not overwrite:
        raise ValueError(f"{name!r} is already in {path}; pass overwrite=True to replace it.")
    entry = build_entry(name, directory, repo_id=repo_id, revision=revision, dataset=dataset, license=license,
                        paper=paper, recipe=recipe, metrics=metrics, binarization=binarization, bundled=bundle,
                        description=description)
    if bundle:
        _bundle.add_bundle(name, entry, directory, models=data["models"], root=bundle_root(path))
    data["models"][name] = entry
    write_manifest(data, path)
    return entry


def remove_entry(name, *, path=None, delete_bundle=True) -> None:
    """Remove ``name`` from the manifest (and its bundled copy, by default)."""
    path = _resolve(path)
    data = read_manifest(path)
    if name not in data["models"]:
        raise _unknown_model(name, data["models"])
    entry = data["models"].pop(name)
    write_manifest(data, path)
    if delete_bundle and entry["bundled"]:
        shutil.rmtree(bundle_root(path) / entry["bundled"], ignore_errors=True)


def set_metrics(name, metrics, *, evaluation=None, path=None) -> dict:
    """Record measured metrics for ``name`` (called by the evaluation command, not by hand).

    Args:
        metrics: ``{metric_name: value}`` as measured.
        evaluation: optional description of how they were measured, e.g.
            ``{"command": "python -m keraszoo.cli evaluate ...", "split": "test"}``.

    Returns:
        the updated entry.
    """
    path = _resolve(path)
    data = read_manifest(path)
    if name not in data["models"]:
        raise _unknown_model(name, data["models"])
    validate_metrics(metrics, source="set_metrics()", where="metrics")
    entry = data["models"][name]
    entry["metrics"] = {str(k): float(v) for k, v in metrics.items()}
    if evaluation is not None:
        # The day of the measurement: today, unless ``evaluation`` says when it was measured.
        entry["evaluation"] = {"date": datetime.date.today().isoformat(), **copy.deepcopy(evaluation)}
    write_manifest(data, path)
    return copy.deepcopy(entry)
