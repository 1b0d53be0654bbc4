"""The weights manifest: one source of truth for every published keraszoo weight.

The manifest is ``weights_manifest.json`` at the top of the repository; the
package reads it as ``keraszoo/weights_manifest.json`` (a relative symlink in a
source checkout, a regular file in an installed wheel). Its layout::

    {
      "format_version": 1,
      "models": {
        "vae_mnist": {
          "model":   {"class": "VAE", "registered_name": "keraszoo>VAE",
                      "variant": "vae", "config": {...}},
          "hub":     {"repo_id": "keraszoo/vae-mnist", "revision": "<40-hex commit>",
                      "files": {"config.json": {"sha256": "...", "size": 1234}, ...}},
          "bundled": "pretrained/vae_mnist",          # or null
          "dataset": {"name": "mnist", "split": "train", ...},
          "input":   {"shape": [28, 28, 1], "dtype": "float32",
                      "value_range": [0.0, 1.0], "binarization": "none"},
          "recipe":  {"command": "python training/train.py ...", "epochs": 50,
                      "batch_size": 128, "seed": 0, "hardware": "...", "wall_time_s": 812.0},
          "metrics": {"test_elbo": -97.1, ...},      # written by the evaluation command
          "license": {"weights": "MIT", "data": "CC BY-SA 3.0"},
          "paper":   {"title": "...", "url": "https://arxiv.org/abs/..."},
          "keraszoo_version": "0.1.0", "created": "2025-01-01"
        }
      }
    }

Entries are never typed by hand: :func:`add_entry` builds one from a folder
written by :func:`keraszoo.save_pretrained` (digests and sizes are computed) and
:func:`set_metrics` records what the evaluation command measured.

This module must stay importable without TensorFlow, Keras or huggingface_hub:
``keraszoo.list_models()`` and ``keraszoo.info()`` are answered from here.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import fnmatch
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from keraszoo.weights.integrity import SHA256_PATTERN, file_record, verify_file
from keraszoo.weights.model_card import IMAGE_FILES

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_ENV",
    "ManifestError",
    "UnknownModelError",
    "manifest_path",
    "read_manifest",
    "validate_manifest",
    "validate_entry",
    "write_manifest",
    "list_models",
    "info",
    "get_entry",
    "build_entry",
    "add_entry",
    "remove_entry",
    "set_metrics",
    "bundle_root",
    "bundled_dir",
    "check_bundle_limits",
    "REQUIRED_FILES",
    "BUNDLED_FILES",
    "BUNDLE_FILE_LIMIT",
    "BUNDLE_TOTAL_LIMIT",
]

#: Version of the manifest layout understood by this code.
FORMAT_VERSION = 1

#: Environment variable that points keraszoo at another manifest file (tests, mirrors).
MANIFEST_ENV = "KERASZOO_MANIFEST"

#: Files every published weight has, on the Hub and in the bundled copy.
REQUIRED_FILES = ("config.json", "model.weights.h5", "metadata.json")

#: Files copied into ``keraszoo/pretrained/<name>/`` for bundled weights.
BUNDLED_FILES = ("config.json", "model.weights.h5", "metadata.json", "README.md")

#: Size limits for bundled weights (bytes): per file, and all bundles together.
#: 60 MB holds the whole zoo (17 planned entries, most 1-5 MB) and keeps the wheel well
#: under PyPI's 100 MB upload limit; a larger model goes to the Hub only (bundle=False).
BUNDLE_FILE_LIMIT = 5_000_000
BUNDLE_TOTAL_LIMIT = 60_000_000

BINARIZATIONS = ("none", "static", "dynamic")

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_PACKAGED_MANIFEST = _PACKAGE_DIR / "weights_manifest.json"
_REPO_MANIFEST = _PACKAGE_DIR.parent / "weights_manifest.json"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

_ENTRY_REQUIRED = ("model", "hub", "bundled", "dataset", "input", "recipe", "metrics", "license", "paper")
_ENTRY_OPTIONAL = ("keraszoo_version", "created", "description", "evaluation")
_RECIPE_REQUIRED = {
    "command": str,
    "epochs": int,
    "batch_size": int,
    "seed": int,
    "hardware": str,
    "wall_time_s": (int, float),
}


class ManifestError(ValueError):
    """The manifest (or an entry about to be written to it) does not follow the schema."""


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


def bundle_root(path=None) -> Path:
    """Directory that the manifest's ``bundled`` paths are relative to.

    It is the folder that holds the manifest file (``keraszoo/`` for the packaged
    manifest), except for the repository-root fallback, whose bundles live in the
    package folder.
    """
    path = Path(path) if path is not None else manifest_path()
    absolute = Path(os.path.abspath(path))
    if absolute == Path(os.path.abspath(_REPO_MANIFEST)):
        return _PACKAGE_DIR
    return absolute.parent


def bundled_dir(name, *, path=None):
    """Return the folder of the bundled copy of ``name``, or None when it is not bundled."""
    entry = get_entry(name, path=path)
    if not entry["bundled"]:
        return None
    return bundle_root(path) / entry["bundled"]


# --------------------------------------------------------------------------- reading


def read_manifest(path=None) -> dict:
    """Read and validate the manifest; return it as a dict.

    Raises:
        ManifestError: the file is not valid JSON or does not follow the schema.
            The message names the file and the offending field.
    """
    path = Path(path) if path is not None else manifest_path()
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


def validate_manifest(data, *, source="manifest") -> None:
    """Check the whole manifest against the schema; raise :class:`ManifestError` if it is off."""
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a JSON object at the top level, got {type(data).__name__}.")
    unknown = set(data) - {"format_version", "models"}
    if unknown:
        raise ManifestError(f"{source}: unknown top-level keys {sorted(unknown)}; expected 'format_version' and 'models'.")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"{source}: format_version is {version!r}, this keraszoo understands format_version "
            f"{FORMAT_VERSION}. Upgrade keraszoo or regenerate the manifest."
        )
    models = data.get("models")
    if not isinstance(models, dict):
        raise ManifestError(f"{source}: 'models' must be an object mapping names to entries, got {type(models).__name__}.")
    for name, entry in models.items():
        validate_entry(name, entry, source=source)


def _fail(source, where, message):
    raise ManifestError(f"{source}: {where}: {message}")


def _require_dict(value, source, where):
    if not isinstance(value, dict):
        _fail(source, where, f"expected an object, got {type(value).__name__} {value!r:.60}")


def _require_str(value, source, where, *, pattern=None, hint=None):
    if not isinstance(value, str) or not value.strip():
        _fail(source, where, f"expected a non-empty string, got {value!r:.60}")
    if pattern is not None and not pattern.match(value):
        _fail(source, where, f"{value!r} is not {hint or 'valid'}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _check_files(files, source, where, *, required=REQUIRED_FILES):
    _require_dict(files, source, where)
    for filename, record in files.items():
        _require_str(filename, source, f"{where} key", pattern=_FILENAME_RE, hint="a plain file name")
        _require_dict(record, source, f"{where}.{filename}")
        extra = set(record) - {"sha256", "size"}
        if extra:
            _fail(source, f"{where}.{filename}", f"unknown keys {sorted(extra)}; expected 'sha256' and 'size'")
        digest = record.get("sha256")
        if not isinstance(digest, str) or not SHA256_PATTERN.match(digest):
            _fail(source, f"{where}.{filename}.sha256", f"expected 64 lowercase hex digits, got {digest!r}")
        size = record.get("size")
        if not _is_int(size) or size < 0:
            _fail(source, f"{where}.{filename}.size", f"expected a non-negative integer, got {size!r}")
    missing = [f for f in required if f not in files]
    if missing:
        _fail(source, where, f"missing required files {missing}")


def validate_recipe(recipe, *, source="recipe", where="recipe") -> None:
    """Check a training recipe: command, epochs, batch_size, seed, hardware, wall_time_s."""
    _require_dict(recipe, source, where)
    for key, kind in _RECIPE_REQUIRED.items():
        if key not in recipe:
            _fail(source, where, f"missing '{key}' (a recipe needs {', '.join(_RECIPE_REQUIRED)})")
        value = recipe[key]
        if kind is str:
            _require_str(value, source, f"{where}.{key}")
        elif kind is int:
            if not _is_int(value):
                _fail(source, f"{where}.{key}", f"expected an integer, got {value!r}")
        elif not _is_number(value):
            _fail(source, f"{where}.{key}", f"expected a finite number, got {value!r}")
    for key in ("epochs", "batch_size"):
        if recipe[key] <= 0:
            _fail(source, f"{where}.{key}", f"must be positive, got {recipe[key]}")
    if recipe["wall_time_s"] < 0:
        _fail(source, f"{where}.wall_time_s", f"must be >= 0, got {recipe['wall_time_s']}")


def validate_metrics(metrics, *, source="metrics", where="metrics") -> None:
    """Check a metrics mapping: metric name -> finite number."""
    _require_dict(metrics, source, where)
    for key, value in metrics.items():
        _require_str(key, source, f"{where} key")
        if not _is_number(value):
            _fail(source, f"{where}.{key}", f"expected a finite number, got {value!r}")


def validate_input(contract, *, source="input", where="input") -> None:
    """Check an input contract: shape, dtype, value_range and binarization."""
    _require_dict(contract, source, where)
    shape = contract.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) and d > 0 for d in shape)):
        _fail(source, f"{where}.shape", f"expected [height, width, channels] of positive integers, got {shape!r}")
    if contract.get("dtype") != "float32":
        _fail(source, f"{where}.dtype", f"expected 'float32', got {contract.get('dtype')!r}")
    value_range = contract.get("value_range")
    if not (isinstance(value_range, list) and len(value_range) == 2 and all(_is_number(v) for v in value_range)
            and value_range[0] < value_range[1]):
        _fail(source, f"{where}.value_range", f"expected [low, high] with low < high, got {value_range!r}")
    if contract.get("binarization") not in BINARIZATIONS:
        _fail(source, f"{where}.binarization", f"expected one of {list(BINARIZATIONS)}, got {contract.get('binarization')!r}")


def validate_entry(name, entry, *, source="manifest") -> None:
    """Check one manifest entry; raise :class:`ManifestError` naming the offending field."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail(source, f"models[{name!r}]", "names are lowercase letters, digits, '_' and '-' (e.g. 'vae_mnist')")
    where = f"models.{name}"
    _require_dict(entry, source, where)
    missing = [k for k in _ENTRY_REQUIRED if k not in entry]
    if missing:
        _fail(source, where, f"missing keys {missing}")
    unknown = set(entry) - set(_ENTRY_REQUIRED) - set(_ENTRY_OPTIONAL)
    if unknown:
        _fail(source, where, f"unknown keys {sorted(unknown)}")

    model = entry["model"]
    _require_dict(model, source, f"{where}.model")
    _require_str(model.get("class"), source, f"{where}.model.class")
    _require_str(model.get("variant"), source, f"{where}.model.variant")
    registered = model.get("registered_name")
    if not (isinstance(registered, str) and registered.startswith("keraszoo>")):
        _fail(source, f"{where}.model.registered_name", f"expected 'keraszoo>ClassName', got {registered!r}")
    _require_dict(model.get("config"), source, f"{where}.model.config")

    hub = entry["hub"]
    _require_dict(hub, source, f"{where}.hub")
    _require_str(hub.get("repo_id"), source, f"{where}.hub.repo_id", pattern=_REPO_ID_RE, hint="an 'org/name' repository id")
    if hub.get("revision") is not None:  # null: not pushed to the Hub yet (bundled copy only)
        _require_str(hub.get("revision"), source, f"{where}.hub.revision", pattern=_COMMIT_RE,
                     hint="a pinned 40-hex commit id (branches and tags move), or null before the first push")
    elif entry.get("bundled") is None:
        _fail(source, f"{where}.hub.revision",
              "is null (not on the Hub yet), so the entry must have a bundled copy ('bundled')")
    _check_files(hub.get("files"), source, f"{where}.hub.files")

    bundled = entry["bundled"]
    if bundled is not None:
        expected = f"pretrained/{name}"
        if bundled != expected:
            _fail(source, f"{where}.bundled", f"expected null or {expected!r}, got {bundled!r}")
        for filename in BUNDLED_FILES:
            if filename not in hub["files"]:
                _fail(source, f"{where}.hub.files", f"bundled weights need a digest for {filename!r}")

    dataset = entry["dataset"]
    _require_dict(dataset, source, f"{where}.dataset")
    _require_str(dataset.get("name"), source, f"{where}.dataset.name")

    validate_input(entry["input"], source=source, where=f"{where}.input")
    validate_recipe(entry["recipe"], source=source, where=f"{where}.recipe")
    validate_metrics(entry["metrics"], source=source, where=f"{where}.metrics")

    lic = entry["license"]
    _require_dict(lic, source, f"{where}.license")
    _require_str(lic.get("weights"), source, f"{where}.license.weights")
    _require_str(lic.get("data"), source, f"{where}.license.data")

    paper = entry["paper"]
    _require_dict(paper, source, f"{where}.paper")
    _require_str(paper.get("title"), source, f"{where}.paper.title")
    _require_str(paper.get("url"), source, f"{where}.paper.url")

    if "evaluation" in entry:
        _require_dict(entry["evaluation"], source, f"{where}.evaluation")


# --------------------------------------------------------------------------- queries


def _closest(name, names):
    return difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.5)


def get_entry(name, *, path=None) -> dict:
    """Return the manifest entry for ``name`` (a deep copy).

    Raises:
        UnknownModelError: ``name`` is not in the manifest; the message lists the
            closest known names.
    """
    models = read_manifest(path)["models"]
    if name in models:
        return copy.deepcopy(models[name])
    if not isinstance(name, str):
        raise UnknownModelError(f"Model names are strings, got {type(name).__name__} {name!r}.")
    if not models:
        raise UnknownModelError(
            f"Unknown pretrained model {name!r}: no pretrained weights are published in this "
            "version of keraszoo yet (the manifest is empty). Load a repository with "
            "keraszoo.load('hf://org/repo') or a local folder written by keraszoo.save_pretrained()."
        )
    close = _closest(name, models)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown pretrained model {name!r}.{hint} Known models: {', '.join(sorted(models))}. "
        "See keraszoo.list_models()."
    )


def list_models(pattern=None, *, path=None) -> list:
    """Names of the published pretrained weights, sorted.

    Args:
        pattern: optional shell-style filter, e.g. ``"vae*"`` or ``"*_mnist"``.

    Does not import TensorFlow.
    """
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
    bundled = bundled_dir(name, path=path) if entry["bundled"] else None
    result["bundled_available"] = bool(
        bundled is not None and all((bundled / f).is_file() for f in BUNDLED_FILES)
    )
    return result


# --------------------------------------------------------------------------- writing


def write_manifest(data, path=None) -> Path:
    """Validate ``data`` and write it as the manifest, atomically.

    The write goes to the real file behind a symlink (so the packaged symlink
    ``keraszoo/weights_manifest.json -> ../weights_manifest.json`` survives).
    Returns the path written.
    """
    path = Path(path) if path is not None else manifest_path()
    validate_manifest(data, source=str(path))
    target = Path(os.path.realpath(path))
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".weights_manifest.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the manifest is a shared, tracked file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_json(path, what):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None


def folder_records(directory) -> dict:
    """Compute ``{filename: {"sha256", "size"}}`` for every regular file in ``directory``."""
    directory = Path(directory)
    records = {}
    for item in sorted(directory.iterdir()):
        if item.name.startswith(".") or not item.is_file():
            continue
        records[item.name] = file_record(item)
    return records


def verify_folder(directory) -> dict:
    """Check that a ``save_pretrained`` folder is consistent with its ``metadata.json``.

    Every file recorded in ``metadata.json`` must exist with the recorded digest
    and size. Returns the parsed metadata.

    Raises:
        FileNotFoundError: the folder or one of its required files is missing.
        IntegrityError: a file changed after ``save_pretrained`` wrote the metadata.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Not a directory: {directory}")
    metadata = _read_json(directory / "metadata.json", "metadata.json")
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"{directory / 'metadata.json'} has no 'files' table; was the folder written by keraszoo.save_pretrained()?")
    _check_files(files, str(directory / "metadata.json"), "files", required=("config.json", "model.weights.h5"))
    for filename, record in files.items():
        verify_file(directory / filename, record["sha256"], expected_size=record["size"], source=str(directory))
    return metadata


def build_entry(
    name,
    directory,
    *,
    repo_id,
    revision,
    dataset,
    license,
    paper,
    recipe=None,
    metrics=None,
    binarization="none",
    bundled=False,
    description=None,
) -> dict:
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
    config = _read_json(directory / "config.json", "config.json")
    if not isinstance(config, dict) or "config" not in config:
        raise ValueError(f"{directory / 'config.json'} is not a serialized Keras object.")
    model_meta = metadata.get("model", {}) if isinstance(metadata.get("model"), dict) else {}
    if isinstance(dataset, str):
        dataset = {"name": dataset}
    input_contract = dict(metadata.get("input") or {})
    input_contract = {
        "shape": input_contract.get("image_shape", input_contract.get("shape")),
        "dtype": input_contract.get("dtype"),
        "value_range": input_contract.get("value_range"),
        "binarization": binarization,
    }
    from keraszoo.version import __version__

    entry = {
        "model": {
            "class": config.get("class_name"),
            "registered_name": config.get("registered_name"),
            "variant": model_meta.get("variant"),
            "config": config["config"],
        },
        "hub": {
            "repo_id": repo_id,
            "revision": revision,
            "files": folder_records(directory),
        },
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


def add_entry(
    name,
    directory,
    *,
    repo_id,
    revision,
    dataset,
    license,
    paper,
    recipe=None,
    metrics=None,
    binarization="none",
    bundle=False,
    description=None,
    overwrite=False,
    path=None,
) -> dict:
    """Register the weights in a ``save_pretrained`` folder in the manifest.

    Builds the entry with :func:`build_entry`; with ``bundle=True`` also copies
    ``config.json``, ``model.weights.h5``, ``metadata.json``, ``README.md`` and the
    card's pictures (``reconstructions.png``, ``samples.png``) when present to
    ``<bundle_root>/pretrained/<name>/`` after checking the size limits
    (each file <= 5 MB, all bundles together <= 60 MB). Then writes the manifest.

    Returns:
        the new entry.

    Raises:
        ValueError: ``name`` exists and ``overwrite`` is false, or a limit is exceeded.
        ManifestError: the entry does not follow the schema.
    """
    path = Path(path) if path is not None else manifest_path()
    data = read_manifest(path)
    if name in data["models"] and not overwrite:
        raise ValueError(f"{name!r} is already in {path}; pass overwrite=True to replace it.")
    entry = build_entry(
        name,
        directory,
        repo_id=repo_id,
        revision=revision,
        dataset=dataset,
        license=license,
        paper=paper,
        recipe=recipe,
        metrics=metrics,
        binarization=binarization,
        bundled=bundle,
        description=description,
    )
    if bundle:
        others = {k: v for k, v in data["models"].items() if k != name}
        sizes = {f: entry["hub"]["files"][f]["size"] for f in bundled_files(entry)}
        _check_limits({name: sizes, **_bundle_sizes(others)})
        target = bundle_root(path) / entry["bundled"]
        target.mkdir(parents=True, exist_ok=True)
        for filename in bundled_files(entry):
            shutil.copyfile(Path(directory) / filename, target / filename)
            verify_file(target / filename, entry["hub"]["files"][filename]["sha256"],
                        expected_size=entry["hub"]["files"][filename]["size"])
    data["models"][name] = entry
    write_manifest(data, path)
    return entry


def remove_entry(name, *, path=None, delete_bundle=True) -> None:
    """Remove ``name`` from the manifest (and its bundled copy, by default)."""
    path = Path(path) if path is not None else manifest_path()
    data = read_manifest(path)
    if name not in data["models"]:
        get_entry(name, path=path)  # raises with suggestions
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
    path = Path(path) if path is not None else manifest_path()
    data = read_manifest(path)
    if name not in data["models"]:
        get_entry(name, path=path)  # raises with suggestions
    validate_metrics(metrics, source="set_metrics()", where="metrics")
    entry = data["models"][name]
    entry["metrics"] = {str(k): float(v) for k, v in metrics.items()}
    if evaluation is not None:
        # The day of the measurement: today, unless ``evaluation`` says when it was measured.
        entry["evaluation"] = {"date": datetime.date.today().isoformat(), **copy.deepcopy(evaluation)}
    write_manifest(data, path)
    return copy.deepcopy(entry)


# --------------------------------------------------------------------------- bundle limits


#: Pictures of the model card, bundled with the weights when the folder has them.
BUNDLED_IMAGES = tuple(IMAGE_FILES)


def bundled_files(entry) -> tuple:
    """The files of ``entry`` that a bundled copy holds: the model, its card and the card's pictures."""
    return BUNDLED_FILES + tuple(f for f in BUNDLED_IMAGES if f in entry["hub"]["files"])


def _bundle_sizes(models) -> dict:
    return {
        name: {f: entry["hub"]["files"][f]["size"] for f in bundled_files(entry)}
        for name, entry in models.items()
        if entry.get("bundled")
    }


def _check_limits(sizes_by_model) -> int:
    total = 0
    for name, sizes in sizes_by_model.items():
        for filename, size in sizes.items():
            if size > BUNDLE_FILE_LIMIT:
                raise ValueError(
                    f"Bundled file {name}/{filename} is {size} bytes; bundled files must be at most "
                    f"{BUNDLE_FILE_LIMIT} bytes (5 MB). Publish it on the Hub only (bundle=False)."
                )
            total += size
    if total > BUNDLE_TOTAL_LIMIT:
        raise ValueError(
            f"Bundled weights would total {total} bytes; the limit is {BUNDLE_TOTAL_LIMIT} bytes ({BUNDLE_TOTAL_LIMIT // 1_000_000} MB). "
            "Publish some on the Hub only (bundle=False)."
        )
    return total


def check_bundle_limits(*, path=None, verify=True) -> dict:
    """Check every bundled weight in the manifest: present, within the size limits, digests match.

    Returns:
        ``{"total_bytes": ..., "models": [names...]}``.

    Raises:
        ValueError: a file is over 5 MB or the bundles total over 60 MB.
        FileNotFoundError: a bundled file listed in the manifest is missing.
        IntegrityError: a bundled file does not match its digest (``verify=True``).
    """
    path = Path(path) if path is not None else manifest_path()
    models = read_manifest(path)["models"]
    root = bundle_root(path)
    actual = {}
    for name, entry in models.items():
        if not entry["bundled"]:
            continue
        folder = root / entry["bundled"]
        sizes = {}
        for filename in bundled_files(entry):
            file_path = folder / filename
            if not file_path.is_file():
                raise FileNotFoundError(f"Bundled weights for {name!r} are incomplete: {file_path} is missing.")
            sizes[filename] = file_path.stat().st_size
            if verify:
                record = entry["hub"]["files"][filename]
                verify_file(file_path, record["sha256"], expected_size=record["size"], source=f"bundled {name}")
        actual[name] = sizes
    total = _check_limits(actual)
    return {"total_bytes": total, "models": sorted(actual)}
