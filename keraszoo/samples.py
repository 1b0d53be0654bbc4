"""The small, credited MNIST sample that ships with keraszoo.

``keraszoo/assets/mnist_sample/`` holds the first 500 images of the MNIST
**test** split as one PNG sprite (25 rows x 20 columns of 28x28 digits) plus
their labels. MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C.
Burges, distributed under CC BY-SA 3.0 (see the folder's README). The demo and
the tests use it so that they run offline without the full dataset.

Rebuild it from a full ``mnist.npz`` with::

    python -m keraszoo.samples /path/to/mnist.npz
"""

import json
import pathlib

import numpy as np

SAMPLE_DIR = pathlib.Path(__file__).parent / "assets" / "mnist_sample"
COLUMNS = 20
NUM_IMAGES = 500


def load_mnist_sample(num=None):
    """Returns ``(x, y)``: float32 images ``(N, 28, 28, 1)`` in [0, 1] and uint8 labels."""
    from PIL import Image

    sprite = np.asarray(Image.open(SAMPLE_DIR / "images.png").convert("L"))
    labels = np.asarray(json.loads((SAMPLE_DIR / "labels.json").read_text())["labels"], dtype="uint8")
    rows = sprite.shape[0] // 28
    tiles = sprite.reshape(rows, 28, COLUMNS, 28).transpose(0, 2, 1, 3).reshape(-1, 28, 28)
    x = tiles[: len(labels)].astype("float32")[..., None] / 255.0
    if num is not None:
        x, labels = x[:num], labels[:num]
    return x, labels


def build_mnist_sample(npz_path, out_dir=SAMPLE_DIR, num=NUM_IMAGES):
    """Writes the sprite and labels from the first ``num`` test images of ``npz_path``."""
    from PIL import Image

    with np.load(npz_path) as data:
        x, y = data["x_test"][:num], data["y_test"][:num]
    rows = -(-num // COLUMNS)
    padded = np.zeros((rows * COLUMNS, 28, 28), dtype="uint8")
    padded[:num] = x
    sprite = padded.reshape(rows, COLUMNS, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, COLUMNS * 28)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sprite, mode="L").save(out_dir / "images.png", optimize=True)
    (out_dir / "labels.json").write_text(json.dumps({
        "source": f"MNIST test split, images 0..{num - 1} in canonical order",
        "license": "CC BY-SA 3.0",
        "labels": [int(v) for v in y],
    }))


if __name__ == "__main__":
    import sys

    build_mnist_sample(sys.argv[1])
    print(f"wrote {SAMPLE_DIR}")
