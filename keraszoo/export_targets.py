"""Export formats and the checks of an export's target that need no model (and no TensorFlow).

One table for :func:`keraszoo.models.export.export_model` and the ``keraszoo
export`` command: the command checks its ``-o`` path with :func:`check_target`
before it loads a model, so a wrong suffix, a missing folder or an existing
artifact fail at once, without TensorFlow's start-up.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: the formats export_model writes (``keraszoo export --format`` offers the same).
FORMATS = ("tf_saved_model", "litert", "onnx")
#: the file suffix each single-file format requires.
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}
#: what to ``pip install`` when a format's converter is missing (also ``pip install 'keraszoo[export]'``).
CONVERTER_PACKAGES = {"onnx": "tf2onnx"}
#: a folder holding this file is a SavedModel, which ``overwrite=True`` may replace.
SAVED_MODEL_FILE = "saved_model.pb"


def _is_empty_dir(path):
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_target(filepath, format, overwrite, *, format_hint="pass format={!r}", overwrite_hint="allow replacing it (overwrite=True)"):
    """The export's target as a ``Path``, after the checks that need no model.

    ``format_hint`` and ``overwrite_hint`` word the remedies for the caller (the
    command line says ``add --format onnx`` and ``pass --force``).

    Raises:
        ValueError: an unknown format, or a suffix that does not fit ``format``
            (``.tflite`` for litert, ``.onnx`` for onnx, a folder name for tf_saved_model).
        FileNotFoundError: the parent folder does not exist (export creates no folders).
        FileExistsError: the target exists and ``overwrite`` is false, or it is
            something that an export would not write (a folder that is not a SavedModel).
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; expected one of {', '.join(repr(f) for f in FORMATS)}.")
    target = Path(os.fspath(filepath)).expanduser()
    suffix = target.suffix.lower()
    if format in SUFFIXES and suffix != SUFFIXES[format]:
        raise ValueError(f"The {format} format writes one {SUFFIXES[format]} file; the path must end with "
                         f"{SUFFIXES[format]}, received {str(filepath)!r}.")
    if format == "tf_saved_model" and suffix in SUFFIXES.values():
        other = next(name for name, s in SUFFIXES.items() if s == suffix)
        raise ValueError(f"A tf_saved_model export is a folder, but {str(filepath)!r} is named like a {suffix} "
                         f"file; {format_hint.format(other)} or a folder name.")
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"The folder {str(parent)!r} of the export target does not exist; create it first.")
    if target.exists() or target.is_symlink():
        if _is_empty_dir(target):
            return target
        if not overwrite:
            raise FileExistsError(f"{str(target)!r} already exists; remove it or {overwrite_hint}.")
        replaceable = (target.is_dir() and (target / SAVED_MODEL_FILE).is_file()) or (
            target.is_file() and suffix in SUFFIXES.values())
        if not replaceable:
            kind = "folder" if target.is_dir() else "file"
            raise FileExistsError(f"{str(target)!r} is a {kind} that is not an exported model; refusing to replace it "
                                  f"(remove it yourself or choose another path).")
    return target


def check_converter(format):
    """Raises ImportError when ``format`` needs a converter package that is not installed."""
    package = CONVERTER_PACKAGES.get(format)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ImportError(f"{format} export needs the {package} converter, which is not installed: "
                          f"pip install {package} (or pip install 'keraszoo[export]').")
