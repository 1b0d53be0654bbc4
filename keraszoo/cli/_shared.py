"""What several ``keraszoo`` commands share: errors, the help formatter, output, model loading, inputs.

Nothing here imports TensorFlow at module level; the helpers that need it
import it when called.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keraszoo import errors
from keraszoo.argtypes import positive_int

PROG = "keraszoo"
BATCH_SIZE = 256
#: The flags of ``keraszoo`` itself, accepted before and after the command.
GLOBAL_FLAGS = ("--debug", "-q", "--quiet")


class CommandError(Exception):
    """An error reported as ``keraszoo: error: <message>`` with exit status 1."""

    exit_status = 1


class UsageError(errors.UsageError, CommandError):
    """A bad command line found after parsing: ``keraszoo COMMAND: error: <message>``, exit status 2.

    keraszoo's one :class:`keraszoo.errors.UsageError`, with the exit status of a
    bad command line; any error whose ``exit_status`` is 2 is reported the same way
    (e.g. :class:`keraszoo.training.recipe.ArgumentValueError`), every other one
    with status 1.
    """

    exit_status = 2


def exit_status(err) -> int:
    """The command line's exit status for ``err``: its ``exit_status`` (2: a bad command line), else 1."""
    return 2 if getattr(err, "exit_status", 1) == 2 else 1


# --------------------------------------------------------------------------- parser helpers


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in epilogs as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def examples(*lines):
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_command(subparsers, common_parent, name, help, epilog, parents=(), **kwargs):
    """A sub-parser with the shared formatter, the --debug/--quiet flags (and ``parents``) and ``help`` as description."""
    return subparsers.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", epilog=epilog,
                                 formatter_class=Formatter, parents=[common_parent, *parents], **kwargs)


def steps(text):
    """argparse type: an interpolation length, both end points included."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 steps (both end points), got {value}")
    return value


def output(*suffixes):
    """argparse type: an output path ending with one of ``suffixes``."""

    def check(text):
        path = Path(text).expanduser()
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{text!r} must end with {' or '.join(suffixes)}"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
        for parent in path.parents:  # missing folders are created on writing, a file in the way cannot be
            if parent.exists():
                if not parent.is_dir():
                    raise argparse.ArgumentTypeError(f"{text!r} cannot be written: {str(parent)!r} is a file, not a folder")
                break
        return path

    check.__name__ = "output file"
    return check


def add_model_options(parser, name=True):
    if name:
        parser.add_argument("name", metavar="NAME",
                            help="manifest name (see 'keraszoo list'), hf://org/repo[@rev] or a "
                                 "save_pretrained folder")
    group = parser.add_argument_group("model loading")
    group.add_argument("--revision", help="Hub branch, tag or commit (hf:// models)")
    group.add_argument("--source", choices=("auto", "bundled", "hub"), default="auto",
                       help="for manifest names: the copy bundled with keraszoo or the Hub (default: auto)")


def add_image_options(parser):
    group = parser.add_argument_group("input images")
    group.add_argument("--resize", action="store_true",
                       help="resize images of another size to the model's input size instead of refusing them")
    group.add_argument("--color-mode", choices=("grayscale", "rgb"), default=None,
                       help="convert images to this channel count (color to gray, alpha dropped); "
                            "must match the model's input")


# --------------------------------------------------------------------------- output


def say(args, *parts):
    """Informational output: suppressed by --quiet, on stderr when stdout carries --json."""
    if not args.quiet:
        print(*parts, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def print_json(value):
    print(json.dumps(value, indent=2, sort_keys=True))


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def shape_text(shape):
    return "x".join(str(int(d)) for d in shape)


# --------------------------------------------------------------------------- models and arrays


def np():
    import numpy

    return numpy


def to_numpy(tensor):
    from keras import ops

    return np().asarray(ops.convert_to_numpy(tensor))


def map_batches(args, fn, x, label, batch_size=BATCH_SIZE):
    """``fn`` over ``x`` in batches, as NumPy; a Keras progress bar for more than one batch."""
    n = len(x)
    bar = None
    if not args.quiet and n > batch_size:
        import keras

        say(args, f"{label} {n} images")
        bar = keras.utils.Progbar(n, unit_name="image")
    out = []
    for start in range(0, n, batch_size):
        out.append(to_numpy(fn(x[start:start + batch_size])))
        if bar is not None:
            bar.update(min(n, start + batch_size))
    return np().concatenate(out, axis=0)


def check_inputs_exist(paths, what="input"):
    for path in paths:
        if not Path(path).expanduser().exists():
            raise CommandError(f"{what} {str(path)!r} does not exist.")


def load_model(args):
    """``keraszoo.load(args.name)``; the spec is resolved (and checked) before TensorFlow is imported."""
    from keraszoo.weights import loader

    say(args, f"Loading {args.name} ...")
    model = loader.load(args.name, revision=args.revision, source=args.source, compile=False)
    say(args, f"  {type(model).__name__} (variant {model.variant}), input {shape_text(model.image_shape)}, "
              f"latent_dim {model.latent_dim}")
    return model


def read_images(args, model, paths):
    """Image files / folders -> float32 (N, H, W, C) checked against the model's input, and the files."""
    from keraszoo.data.images import load_images

    try:
        return load_images(paths, model.image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as err:
        raise CommandError(str(err)) from err


def read_array(path, key, candidates, what):
    """The array of a ``.npy``, or of an ``.npz`` (``key``, else the first of ``candidates``, else its only one)."""
    from keraszoo.data.sources import read_array as read

    try:
        return read(path, key, candidates=candidates, what=what)
    except ValueError as err:
        raise CommandError(str(err)) from err


def read_image_input(args, model, path):
    """An image folder, image file, ``.npy`` or ``.npz`` as model input, and the image files (or None)."""
    path = Path(path).expanduser()
    if path.is_dir() or path.suffix.lower() not in (".npy", ".npz"):
        x, files = read_images(args, model, [path])
        return x, [str(f) for f in files]
    from keraszoo.data.images import prepare_images

    array = read_array(path, args.key, ("x_train", "x", "images"), "images")
    try:
        x = prepare_images(array, model.image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as err:
        raise CommandError(f"{path}: {err}") from err
    return np().asarray(x), None


def save_arrays(path, array=None, **arrays):
    """``numpy.save`` (``array``) or ``numpy.savez`` (``arrays``) to ``path``, atomically: a failed write leaves no file."""
    from keraszoo.utils import atomic_path

    with atomic_path(path, mode=0o644) as tmp, open(tmp, "wb") as f:
        if array is not None:
            np().save(f, array)
        else:
            np().savez(f, **arrays)
    return Path(path)


def write_images(images, path, ncols=None):
    """``.png``: a grid (see keraszoo.visualization); ``.npy``: the float32 array."""
    from keraszoo import visualization as vis

    path = Path(path)
    if path.suffix.lower() == ".npy":
        save_arrays(path, np().asarray(images, dtype="float32"))
    else:
        vis.save_grid(images, path, ncols)
    return path
