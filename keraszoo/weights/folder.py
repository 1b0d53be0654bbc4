"""Folders written by :func:`keraszoo.save_pretrained`: their files table and its verification.

A pretrained folder records the sha256 and size of every other file in its
``metadata.json`` (the ``files`` table). :func:`verify_folder` is the one check
of such a folder; publishing (``push_to_hub``), registering (``add_entry``) and
loading a local folder (``keraszoo.load(path)``) all go through it. No heavy
dependencies (no TensorFlow, Keras or huggingface_hub).
"""

from __future__ import annotations

import json
from pathlib import Path

from keraszoo.weights.integrity import file_record
from keraszoo.weights.integrity import verify_file
from keraszoo.weights.schema import check_files

__all__ = ["MAX_METADATA_BYTES", "read_json", "files_table", "folder_records", "verify_folder"]

#: Largest ``metadata.json`` keraszoo reads (bytes).
MAX_METADATA_BYTES = 2_000_000

#: Files the ``files`` table of every pretrained folder records.
_TABLE_REQUIRED = ("config.json", "model.weights.h5")


class JSONTooDeepError(ValueError):
    """A JSON file nested deeper than Python's parser follows (thousands of levels)."""


def read_json(path, what, limit=None):
    """Parse the JSON file at ``path``; ``what`` names it in messages, ``limit`` caps its size in bytes.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is larger than ``limit`` or is not valid (UTF-8) JSON
            (:class:`JSONTooDeepError`: nested too deeply to parse).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    if limit is not None and size > limit:
        raise ValueError(f"{what} ({path}) is {size} bytes, larger than the {limit} bytes keraszoo accepts.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} ({path}) is not valid JSON: {err}") from None
    except RecursionError:
        raise JSONTooDeepError(f"{what} ({path}) is nested too deeply to be a keraszoo file (thousands of levels of "
                         "arrays or objects).") from None


def files_table(metadata, where) -> dict:
    """Return the checked ``files`` table of a parsed ``metadata.json``; ``where`` names its folder or repository.

    Raises:
        ValueError: there is no table, or (as :class:`~keraszoo.weights.schema.ManifestError`)
            it does not follow the schema or lacks ``config.json`` / ``model.weights.h5``.
    """
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"metadata.json of {where} has no 'files' table; was it written by keraszoo.save_pretrained()?")
    check_files(files, f"metadata.json of {where}", "files", required=_TABLE_REQUIRED)
    return files


def folder_records(directory, *, exclude=()) -> dict:
    """Compute ``{filename: {"sha256", "size"}}`` for every regular, non-hidden file in ``directory``."""
    records = {}
    for item in sorted(Path(directory).iterdir()):
        if item.name in exclude or item.name.startswith(".") or not item.is_file():
            continue
        records[item.name] = file_record(item)
    return records


def verify_folder(directory) -> dict:
    """Check that a ``save_pretrained`` folder is consistent with its ``metadata.json``.

    ``metadata.json`` must be there (at most :data:`MAX_METADATA_BYTES`) with a
    ``files`` table that follows the schema, and every file it records must exist
    with the recorded digest and size. Returns the parsed metadata.

    Raises:
        FileNotFoundError: the folder or a recorded file is missing.
        IsADirectoryError: a folder stands where a recorded file should be.
        ValueError: no ``metadata.json``, or it is unreadable or has no valid ``files`` table.
        IntegrityError: a file changed after ``save_pretrained`` wrote the metadata.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Not a directory: {directory}")
    if (directory / "metadata.json").is_dir():
        raise IsADirectoryError(f"{directory / 'metadata.json'} is a folder; expected the metadata.json file "
                                "keraszoo.save_pretrained() writes.")
    if not (directory / "metadata.json").is_file():
        raise ValueError(
            f"{directory} has no metadata.json: expected a folder written by keraszoo.save_pretrained() "
            "(config.json, model.weights.h5, metadata.json)."
        )
    metadata = read_json(directory / "metadata.json", "metadata.json", MAX_METADATA_BYTES)
    for filename, record in files_table(metadata, str(directory)).items():
        path = directory / filename
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder, but {directory}/metadata.json records a file of "
                                    f"{record['size']} bytes there: the folder was changed after "
                                    "keraszoo.save_pretrained() wrote it. Put the file back (or save the model again).")
        verify_file(directory / filename, record["sha256"], expected_size=record["size"], source=str(directory))
    return metadata
