"""The bundled copies: weights that ship inside the package, under ``keraszoo/pretrained/<name>/``.

Which files a bundled copy holds, the size limits that keep the wheel small,
copying a folder in and checking every copy. The functions work on manifest
entries and the bundle root (the folder the manifest's ``bundled`` paths are
relative to); :mod:`keraszoo.weights.manifest` resolves both from the manifest
file (:func:`~keraszoo.weights.manifest.bundle_root`,
:func:`~keraszoo.weights.manifest.check_bundle_limits`). No heavy dependencies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from keraszoo.utils import atomic_path
from keraszoo.weights.integrity import verify_file
from keraszoo.weights.model_card import IMAGE_FILES
from keraszoo.weights.schema import BUNDLED_FILES

__all__ = [
    "BUNDLED_FILES",
    "BUNDLED_IMAGES",
    "BUNDLE_FILE_LIMIT",
    "BUNDLE_TOTAL_LIMIT",
    "bundled_files",
    "is_complete",
    "add_bundle",
    "check_bundles",
]

#: Pictures of the model card, bundled with the weights when the folder has them.
BUNDLED_IMAGES = tuple(IMAGE_FILES)

#: Size limits for bundled weights (bytes): per file, and all bundles together.
#: 6 MB per file holds the MNIST MLPs (4.3 MB; the ladder VAE's, batch normalization included, 5.4 MB);
#: 80 MB holds the whole zoo (19 entries, most 1-6 MB: about 70 MB with their pictures) and keeps
#: the wheel under PyPI's 100 MB upload limit; a larger model goes to the Hub only (bundle=False).
BUNDLE_FILE_LIMIT = 6_000_000
BUNDLE_TOTAL_LIMIT = 80_000_000


def bundled_files(entry) -> tuple:
    """The files of ``entry`` that a bundled copy holds: the model, its card and the card's pictures."""
    return BUNDLED_FILES + tuple(f for f in BUNDLED_IMAGES if f in entry["hub"]["files"])


def is_complete(folder, files=BUNDLED_FILES) -> bool:
    """Whether ``folder`` (None: not bundled) holds every one of ``files``."""
    return folder is not None and all((Path(folder) / f).is_file() for f in files)


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
                    f"{BUNDLE_FILE_LIMIT} bytes ({BUNDLE_FILE_LIMIT // 1_000_000} MB). Publish it on the Hub only (bundle=False)."
                )
            total += size
    if total > BUNDLE_TOTAL_LIMIT:
        raise ValueError(
            f"Bundled weights would total {total} bytes; the limit is {BUNDLE_TOTAL_LIMIT} bytes ({BUNDLE_TOTAL_LIMIT // 1_000_000} MB). "
            "Publish some on the Hub only (bundle=False)."
        )
    return total


def add_bundle(name, entry, directory, *, models, root) -> Path:
    """Copy the bundled files of the new ``entry`` from ``directory`` to ``root / entry["bundled"]``.

    The size limits are checked first, counting the other bundles in ``models``
    (the manifest's entries); each copy is written atomically and verified.
    Returns the bundle folder.

    Raises:
        ValueError: a file is over 6 MB or the bundles would total over 80 MB.
    """
    records = entry["hub"]["files"]
    others = {k: v for k, v in models.items() if k != name}
    _check_limits({name: {f: records[f]["size"] for f in bundled_files(entry)}, **_bundle_sizes(others)})
    target = Path(root) / entry["bundled"]
    target.mkdir(parents=True, exist_ok=True)
    for filename in bundled_files(entry):
        with atomic_path(target / filename, mode=0o644) as tmp:
            shutil.copyfile(Path(directory) / filename, tmp)
        verify_file(target / filename, records[filename]["sha256"], expected_size=records[filename]["size"])
    return target


def check_bundles(models, root, *, verify=True) -> dict:
    """Check the bundled copies of ``models`` under ``root``: present, within the size limits, digests match.

    Returns:
        ``{"total_bytes": ..., "models": [names...]}``.

    Raises:
        ValueError: a file is over 6 MB or the bundles total over 80 MB.
        FileNotFoundError: a bundled file listed in the manifest is missing.
        IntegrityError: a bundled file does not match its digest (``verify=True``).
    """
    actual = {}
    for name, entry in models.items():
        if not entry["bundled"]:
            continue
        folder = Path(root) / entry["bundled"]
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
