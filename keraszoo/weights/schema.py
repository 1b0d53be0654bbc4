"""The schema of the weights manifest: what an entry, a recipe, metrics and an input contract look like.

Every rule on names, repository ids, pinned commits and file names is defined
here once; the manifest, the folder checks, the loader and the publisher all
validate through this module. No heavy dependencies (no TensorFlow, Keras or
huggingface_hub).

The manifest's layout::

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
"""

from __future__ import annotations

import math
import re

from keraszoo.weights.integrity import SHA256_PATTERN

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_FILES",
    "BUNDLED_FILES",
    "BINARIZATIONS",
    "NAME_PATTERN",
    "REPO_ID_PATTERN",
    "COMMIT_PATTERN",
    "FILENAME_PATTERN",
    "ManifestError",
    "validate_manifest",
    "validate_entry",
    "validate_recipe",
    "validate_metrics",
    "validate_input",
    "check_files",
]

#: Version of the manifest layout understood by this code.
FORMAT_VERSION = 1

#: Files every published weight has, on the Hub and in the bundled copy.
REQUIRED_FILES = ("config.json", "model.weights.h5", "metadata.json")

#: Files copied into ``keraszoo/pretrained/<name>/`` for bundled weights.
BUNDLED_FILES = ("config.json", "model.weights.h5", "metadata.json", "README.md")

BINARIZATIONS = ("none", "static", "dynamic")

#: A manifest name: ``vae_mnist``.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
#: A Hub repository id: ``org/name``.
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
#: A pinned Hub commit id: 40 lowercase hex digits.
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
#: A plain file name inside a model folder (no directories, no leading dot).
FILENAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

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


def check_files(files, source, where, *, required=REQUIRED_FILES) -> None:
    """Check a files table ``{filename: {"sha256", "size"}}``: plain names, digests, sizes, required files."""
    _require_dict(files, source, where)
    for filename, record in files.items():
        _require_str(filename, source, f"{where} key", pattern=FILENAME_PATTERN, hint="a plain file name")
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
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
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
    _require_str(hub.get("repo_id"), source, f"{where}.hub.repo_id", pattern=REPO_ID_PATTERN,
                 hint="an 'org/name' repository id")
    if hub.get("revision") is not None:  # null: not pushed to the Hub yet (bundled copy only)
        _require_str(hub.get("revision"), source, f"{where}.hub.revision", pattern=COMMIT_PATTERN,
                     hint="a pinned 40-hex commit id (branches and tags move), or null before the first push")
    elif entry.get("bundled") is None:
        _fail(source, f"{where}.hub.revision",
              "is null (not on the Hub yet), so the entry must have a bundled copy ('bundled')")
    check_files(hub.get("files"), source, f"{where}.hub.files")

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
