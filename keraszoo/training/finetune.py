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

The run is resumable like ``train.py`` (kill it and run the same command
again) and writes a ``save_pretrained`` folder with ``training_log.csv`` and
``command.txt``.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time

from keraszoo.argtypes import fraction
from keraszoo.argtypes import positive_int
from keraszoo.training import runtime
from keraszoo.training.arguments import add_device_flags
from keraszoo.training.recipe import UsageError

PROG = "keraszoo finetune"
LABEL_KEYS = ("y_train", "y", "labels")






def build_parser() -> argparse.ArgumentParser:
    """The command line of ``training/finetune.py`` (also ``keraszoo finetune``)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Fine-tune a pretrained keraszoo model on your images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", metavar="NAME_OR_PATH", help="manifest name, hf://org/repo or a local folder")
    p.add_argument("--data", required=True, help="image folder, .npy or .npz file")
    p.add_argument("--out", required=True, help="output folder (save_pretrained layout)")
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    p.add_argument("--resize", action="store_true", help="resize images to the model's input size")
    p.add_argument("--color-mode", choices=("grayscale", "rgb"), default=None,
                   help="convert images to this channel count (default: from the model, strict)")
    p.add_argument("--binarize", choices=("none", "dynamic", "static", "threshold"), default="none")
    p.add_argument("--val-split", type=fraction, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--revision", default=None, help="Hub revision for hf:// models")
    add_device_flags(p)
    p.add_argument("--backup-every", type=int, default=200, metavar="STEPS")
    p.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE")
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    return p


def load_images(path, image_shape, *, resize=False, color_mode=None):
    """The images at ``path`` (folder, .npy, .npz) as float32 ``[0, 1]`` NHWC.

    Checked against ``image_shape`` (the model's input); mismatches are
    converted only with ``resize`` / ``color_mode``.
    """
    import numpy as np

    from keraszoo import data
    from keraszoo.data.sources import read_array

    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        ds = data.from_directory(
            path,
            # (h, w, c): without color_mode, the channel count must match the model's.
            image_size=tuple(image_shape[:2]) + ((image_shape[2],) if color_mode is None else ()),
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


def freeze_encoder(model):
    """Make ``model.encoder`` non-trainable (the caller re-compiles)."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise UsageError(f"{type(model).__name__} has no `encoder` sub-network to freeze.")
    encoder.trainable = False
    return model


def finetune(args, argv) -> int:
    """Run the fine-tuning configured by ``args`` (see :func:`build_parser`)."""
    import keras

    import keraszoo
    from keraszoo import data
    from keraszoo.training.fitting import final_metrics
    from keraszoo.training.fitting import fit_resumable
    from keraszoo.training.fitting import hold_out
    from keraszoo.training.fitting import save_run

    t_start = time.time()
    out = pathlib.Path(args.out)
    work = out / "train_state"
    dist = runtime.Distribution("default")
    deterministic, jit, spe = runtime.resolve_runtime(args.jit_compile, args.steps_per_execution,
                                                      args.deterministic, dist)

    with runtime.determinism(args.seed, deterministic):
        kwargs = {"revision": args.revision} if args.revision else {}
        model = keraszoo.load(args.model, **kwargs)
        try:
            x = load_images(args.data, model.image_shape, resize=args.resize, color_mode=args.color_mode)
        except ValueError as e:
            raise UsageError(f"--data {args.data}: {e}") from e
        y = y_val = None
        if getattr(model, "requires_labels", False):
            y = load_labels(args.data, model.num_classes)
            if len(y) != len(x):
                raise UsageError(f"--data {args.data}: {len(x)} images but {len(y)} labels; expected one label "
                                 "per image.")
            y, y_val = hold_out(y, args.val_split)  # the same fixed permutation as the images'
        x, x_val = hold_out(x, args.val_split)
        if len(x) == 0:
            raise UsageError("No training images left after --val-split.")

        if args.freeze_encoder:
            freeze_encoder(model)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=args.lr),
                      steps_per_execution=spe, jit_compile=jit)

        stream = data.EpochStream(x, batch_size=args.batch_size, seed=args.seed,
                                  binarize=None if args.binarize == "none" else args.binarize, labels=y)
        val_ds = None
        if x_val is not None:
            val_ds = data.from_numpy(x_val, y_val, batch_size=500, shuffle=False,
                                     binarize={"none": None, "dynamic": "static"}.get(args.binarize, args.binarize))
        fingerprint = {
            "model": args.model, "revision": args.revision, "data": str(pathlib.Path(args.data).resolve()),
            "lr": args.lr, "batch_size": args.batch_size, "freeze_encoder": args.freeze_encoder,
            "resize": args.resize, "color_mode": args.color_mode, "binarize": args.binarize,
            "val_split": args.val_split, "seed": args.seed, "num_examples": stream.num_examples,
        }
        out.mkdir(parents=True, exist_ok=True)  # once the model and the data are ready: no folder on errors
        result = fit_resumable(
            model, stream, epochs=args.epochs, out_dir=out, work_dir=work, fingerprint=fingerprint,
            distribution=dist, backup_every=args.backup_every, val_ds=val_ds, verbose=args.verbose,
            tensorboard=args.tensorboard, early_stopping=args.early_stopping,
        )
        if result.diverged:
            print("error: the loss became NaN/inf; nothing was saved. Lower --lr.", file=sys.stderr)
            return 3

        metrics = final_metrics(result.last_logs)
        if val_ds is not None:
            res = model.evaluate(val_ds, return_dict=True, verbose=0)
            metrics.update({f"val_{k}": float(v) for k, v in res.items() if k != "loss"})
        if args.freeze_encoder:
            # Saved models are trainable as a whole again.
            model.encoder.trainable = True
        hw = runtime.hardware_info()
        command = " ".join([PROG, shlex.join(argv)])
        recipe = {
            "command": command,
            "argv": list(argv),
            "args": {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "verbose")},
            "script": "keraszoo finetune",
            "base_model": args.model,
            "freeze_encoder": bool(args.freeze_encoder),
            "num_train_examples": int(stream.num_examples),
            "steps_per_epoch": int(stream.steps_per_epoch),
            "epochs": int(args.epochs),
            "batch_size": int(args.batch_size),
            "lr": float(args.lr),
            "seed": int(args.seed),
            "hardware": hw["description"],
            "hardware_details": hw,
            "jit_compile": bool(jit),
            "steps_per_execution": int(spe),
            **result.record(t_start),
            "versions": runtime.versions(),
        }
        save_run(model, out, metrics=metrics, recipe=recipe, dataset={"name": "custom", "path": str(args.data)})
        result.backup.finish()
    print(
        f"Fine-tuned on {result.throughput.total_images} images in {result.fit_time_s:.1f} s "
        f"({result.throughput.images_per_s:.0f} images/s). Model written to {out}."
    )
    return 0


def main(argv=None) -> int:
    """Entry point: ``keraszoo finetune ...`` / ``keraszoo finetune ...``.

    Returns 0 on success, 1 for a reported error (bad data, unknown model,
    the loss became NaN, a full disk), 2 for a bad command line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return finetune(args, argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (OSError, KeyError) as e:  # unknown model, missing files, failed download (keraszoo.load)
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
