"""Fine-tune a pretrained keraszoo model on your own images.

Examples::

    keraszoo finetune vae_mnist --data my_digits/ --epochs 5 --out runs/my_vae
    keraszoo finetune runs/vae_mnist --data images.npy --freeze-encoder --lr 1e-4 --out runs/ft
    keraszoo finetune hf://org/repo --data photos/ --resize --color-mode rgb --out runs/ft

``NAME_OR_PATH`` is anything :func:`keraszoo.load` accepts (a manifest name,
``hf://org/repo[@rev]``, a ``save_pretrained`` folder). ``--data`` is a
folder of PNG/JPEG images (read with :func:`keraszoo.data.from_directory`), a
``.npy`` array or a ``.npz`` archive (``x_train``/``x``/its only array) of
images as ``uint8`` 0..255 or floats in ``[0, 1]``. Images must match the
model's input shape; ``--resize`` / ``--color-mode`` convert them instead of
refusing them.

A conditional model (``requires_labels``: ``cvae_mnist``) fine-tunes on
labelled images: a folder with one sub-folder per class, named by the class
index the model knows (``0/`` .. ``9/`` for MNIST digits), or a ``.npz``
archive with the labels next to the images (``y_train``/``y``/``labels``).

``--freeze-encoder`` makes ``model.encoder`` non-trainable (only the decoder,
and the adversarial autoencoder's discriminator, learn) and re-compiles.

Fine-tuning is a training run that starts from the loaded model's weights, on
the given images: :func:`finetune` makes its :class:`~keraszoo.training.recipe.Recipe`
and hands it to :func:`keraszoo.training.train.run`, the one orchestration
(compile options, a variant's second stage, resuming: all as for ``keraszoo
train``). With ``--val-split`` the held-out images are evaluated at the end
(``val_*`` metrics). The result is a ``save_pretrained`` folder with
``training_log.csv`` and ``command.txt``.
"""

from __future__ import annotations

import argparse
import pathlib

from keraszoo.training.recipe import ArgumentValueError
from keraszoo.training.recipe import UsageError

LABEL_KEYS = ("y_train", "y", "labels")


def add_finetune_arguments(p) -> None:
    """The options of ``keraszoo finetune`` besides the shared parents' (see :mod:`keraszoo.training.arguments`)."""
    p.add_argument("name", metavar="NAME_OR_PATH", help="manifest name, hf://org/repo or a local folder")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--data", required=True, help="image folder, .npy or .npz file")
    g.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    g.add_argument("--resize", action="store_true", help="resize images to the model's input size")
    g.add_argument("--color-mode", choices=("grayscale", "rgb"), default=None,
                   help="convert images to this channel count (default: from the model, strict)")
    g.add_argument("--revision", default=None, help="Hub revision for hf:// models")


def load_images(path, image_shape, *, resize=False, color_mode=None):
    """The images at ``path`` (folder, .npy, .npz) as float32 ``[0, 1]`` NHWC.

    Checked against ``image_shape`` (the model's input); mismatches are
    converted only with ``resize`` / ``color_mode``. ``image_shape=None`` (a model
    still to be built for them): any size, the same for every image.
    """
    import numpy as np

    from keraszoo import data
    from keraszoo.data.sources import read_array

    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        ds = data.from_directory(
            path,
            # (h, w, c): without color_mode, the channel count must match the model's.
            image_size=None if image_shape is None else tuple(image_shape[:2]) + (
                (image_shape[2],) if color_mode is None else ()),
            color_mode=color_mode,
            resize=resize,
            shuffle=False,
            labels=None,
            batch_size=1024,
            cache=False,
        )
        return np.concatenate([np.asarray(b) for b in ds])
    if not path.is_file():
        raise UsageError(f"--data {str(path)!r}: no such file or folder.")
    if path.suffix not in (".npy", ".npz"):
        raise UsageError(f"--data must be a folder, a .npy or a .npz file, got {str(path)!r}.")
    try:
        x = read_array(path)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return data.prepare_images(x, image_shape, resize=resize, color_mode=color_mode)


def load_labels(path, num_classes):
    """One integer class label per image of ``path``, in :func:`load_images`' order (conditional models).

    A folder: every image in a sub-folder named by its class index (``0`` .. ``num_classes - 1``),
    since the pretrained model's classes are fixed (a sorted-name mapping would silently give digit
    ``3``'s folder another label). A ``.npz``: its ``y_train``, ``y`` or ``labels`` array.
    """
    import numpy as np

    from keraszoo.data import images
    from keraszoo.data.sources import read_array

    path = pathlib.Path(path).expanduser()
    expected = (f"a conditional model with {num_classes} classes fine-tunes on labelled images: a folder with one "
                f"sub-folder per class named by its index (0/ .. {num_classes - 1}/), or a .npz archive with "
                f"{'/'.join(LABEL_KEYS)} next to the images")
    if path.is_dir():
        parts = [f.relative_to(path).parts for f in images.list_images(path)]
        flat = [str(pathlib.Path(*p)) for p in parts if len(p) < 2]
        if flat:
            raise UsageError(f"--data {str(path)!r}: {len(flat)} image(s) outside a class sub-folder "
                             f"(e.g. {flat[0]!r}); {expected}.")
        names = sorted({p[0] for p in parts})
        bad = [n for n in names if not (n.isdigit() and int(n) < num_classes)]
        if bad:
            raise UsageError(f"--data {str(path)!r}: sub-folder(s) {bad} are not class indices "
                             f"0..{num_classes - 1}; {expected}.")
        return np.array([int(p[0]) for p in parts], dtype=np.int64)
    if path.suffix != ".npz":
        raise UsageError(f"--data {str(path)!r} holds images without labels; {expected}.")
    try:
        y = read_array(path, candidates=LABEL_KEYS, what="labels")
    except ValueError as e:
        raise UsageError(f"--data {str(path)!r}: {e} ({expected}).") from e
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind not in "iu" or len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise UsageError(f"--data {str(path)!r}: labels must be integers in [0, {num_classes}); received dtype "
                         f"{y.dtype}" + (f", values {y.min()}..{y.max()}" if len(y) else "") + ".")
    return y.astype(np.int64)


def finetune(args: argparse.Namespace, argv, *, quiet=False):
    """Fine-tune as the parsed ``keraszoo finetune`` command line ``args`` says; returns the :class:`TrainResult`."""
    import keraszoo
    from keraszoo.training.arguments import FINETUNE_DEFAULTS
    from keraszoo.training.arguments import context_of
    from keraszoo.training.arguments import given_args
    from keraszoo.training.arguments import run_argv
    from keraszoo.training.recipe import Recipe
    from keraszoo.training.train import StartFrom
    from keraszoo.training.train import TrainImages
    from keraszoo.training.train import run

    context = context_of(args, quiet=quiet)
    if context.out is None:
        raise ArgumentValueError("--out is required")
    given = {**FINETUNE_DEFAULTS, **given_args(args)}
    model = keraszoo.load(args.name, **({"revision": args.revision} if args.revision else {}))
    val_split = given.get("val_split", 0.0)
    recipe = Recipe(model=model.variant, dataset="custom", eval=bool(val_split), eval_split="val", **given)
    try:
        x = load_images(args.data, model.image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as e:
        raise UsageError(f"--data {args.data}: {e}") from e
    y = None
    if model.requires_labels:
        y = load_labels(args.data, model.num_classes)
        if len(y) != len(x):
            raise UsageError(f"--data {args.data}: {len(x)} images but {len(y)} labels; expected one label per image.")
    name = args.name if args.revision is None else f"{args.name}@{args.revision}"
    source = str(pathlib.Path(args.data).expanduser().resolve())
    return run(recipe, context.out, verbose=context.verbose, argv=run_argv(argv), overwrite=context.overwrite,
               initial_weights=StartFrom(model, name=name, freeze_encoder=args.freeze_encoder),
               train_data=TrainImages(x, y, source=source,
                                      preparation={"resize": bool(args.resize), "color_mode": args.color_mode}))
