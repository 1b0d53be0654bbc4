"""Limits (issue 24): what one call may allocate, seeds, broken or oversized image files, configs nested too
deep, a full disk while weights are written. Each is one clear error, never a crash or a raw library error.

Each ``run`` receives an empty tmp folder; inputs it prepares go under ``tmp / "in"``.
"""

from __future__ import annotations

import errno
import os

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import inputs


def case(id, area, description, run, error, match, **kwargs):
    return Case(id=id, area=area, description=description, run=run, error=error, match=match, **kwargs)


def _most():
    """The images of ``shared.SHAPE`` one call returns."""
    from keraszoo.models import checks

    return checks.MAX_VALUES_PER_CALL // int(np.prod(shared.SHAPE))


# --------------------------------------------------------------------------- data


def _png_folder(tmp, *, truncated=False):
    """tmp/in/images: two 8x8 PNGs of noise (their pixel data longer than their header), the second cut in half."""
    from PIL import Image

    folder = inputs(tmp) / "images"
    folder.mkdir(parents=True)
    for name, seed in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / name)
    if truncated:
        data = (folder / "b.png").read_bytes()
        (folder / "b.png").write_bytes(data[: len(data) // 2])
    return folder


def _truncated_in_folder(tmp):
    from keraszoo.data import from_directory

    return from_directory(_png_folder(tmp, truncated=True), image_size=shared.SHAPE)


def _decompression_bomb(tmp):
    """A PNG past Pillow's MAX_IMAGE_PIXELS (lowered to 50 here, rather than a 20000x20000 file)."""
    from PIL import Image

    from keraszoo.data import from_directory

    folder = _png_folder(tmp)
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 50
    try:
        return from_directory(folder, image_size=shared.SHAPE)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


# --------------------------------------------------------------------------- weights


def _deep_config(depth):
    def run(tmp):
        import keraszoo

        folder = shared.copy_folder(shared.vae_folder(), inputs(tmp) / "deep")
        text = (folder / "config.json").read_text()
        nested = '{"a": ' * depth + "0" + "}" * depth
        (folder / "config.json").write_text(text.replace('"config": {', f'"config": {{"junk": {nested}, ', 1))
        shared.refresh_metadata(folder)
        return keraszoo.load(folder)

    return run


# --------------------------------------------------------------------------- a full disk


def _full_disk(tmp):
    """The best-weights file written while the disk fills up half-way (no file name in the OSError)."""
    from keraszoo.training import diskio

    path = inputs(tmp) / "best.weights.h5"  # the folder is an input; no file may be left in it
    real = diskio.write_file

    def half(target, data):
        real(target, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    measured = diskio.free_space
    diskio.write_file = half
    diskio.free_space = lambda _path: "0 B free of 1.0 GB"  # the simulated disk's, not this machine's (the doc stays fixed)
    try:
        return diskio.save_weights_file(shared.vae(), path, what="the best weights", advice="Free some space.")
    finally:
        diskio.write_file, diskio.free_space = real, measured


def _cases():
    too_many = "would return .* images of 8x8x1.*One call returns at most 268,435,456 values \\(1 GiB\\)"
    return [
        case("limits-sample-more-than-one-call-returns", "public API", "model.sample(n) with n past the per-call cap (1 GiB)",
             lambda tmp: shared.vae().sample(_most() + 1), ValueError,
             rf"VAE\.sample\(n=\d+\) {too_many}.*sample in batches of at most [\d,]+, each with its own seed"),
        case("limits-sample-seed-2-64", "public API", "model.sample(n, seed=2**64)",
             lambda tmp: shared.vae().sample(2, seed=2**64), ValueError,
             r"`seed` must be an integer in \[0, 2\*\*32\) = \[0, 4294967295\].*received 18446744073709551616"),
        case("limits-sample-seed-negative", "public API", "model.sample(n, seed=-1)",
             lambda tmp: shared.vae().sample(2, seed=-1), ValueError, r"`seed` must be an integer in \[0, 2\*\*32\)"),
        case("limits-sample-seed-float", "public API", "model.sample(n, seed=1.5)",
             lambda tmp: shared.vae().sample(2, seed=1.5), ValueError,
             r"`seed` must be either an integer or an instance of `SeedGenerator` \(keras\.random; an integer in "
             r"\[0, 2\*\*32\)\); received 1\.5"),
        case("limits-interpolate-billion-steps", "public API", "model.interpolate(a, b, steps=10**9)",
             lambda tmp: shared.vae().interpolate(shared.images(1)[0], shared.images(1)[0], steps=10**9), ValueError,
             rf"interpolate of 1 image pair\(s\) in 1000000000 steps {too_many}"),
        case("limits-decode-more-codes-than-one-call-returns", "public API", "model.decode(z) with more codes than the cap",
             lambda tmp: shared.vae().decode(np.zeros((_most() + 1, 3), "float32")), ValueError,
             rf"VAE\.decode of \d+ codes {too_many}.*decode them in batches"),
        case("limits-folder-truncated-png", "data", "data.from_directory(folder) with a truncated PNG (its header intact)",
             _truncated_in_folder, ValueError, r"^Cannot read image '.*b\.png': image file is truncated"),
        case("limits-folder-decompression-bomb", "data", "data.from_directory(folder) with a PNG past Pillow's pixel limit",
             _decompression_bomb, ValueError,
             r"^Image '.*a\.png' is too large to read safely: 64 pixels, more than Pillow's limit of 50 pixels"),
        case("limits-load-config-nested-990-deep", "weights and hub", "keraszoo.load(folder) whose config.json nests 990 levels",
             _deep_config(990), ValueError, r"config\.json of .*deep: it nests objects and lists more than 100 levels"),
        case("limits-load-config-nested-5000-deep", "weights and hub", "keraszoo.load(folder) whose config.json nests 5000 levels",
             _deep_config(5000), ValueError, r"more than 100 levels deep \(too deep to parse\)"),
        case("limits-weights-write-disk-full", "training", "the best weights written as the disk fills up half-way",
             _full_disk, OSError, r"^Could not write the best weights .*in/best\.weights\.h5: No space left on device "
                                  r"\(the disk is full: .*\)\. Free some space\.$"),
    ]


CASES = _cases()
