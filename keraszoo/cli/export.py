"""The ``export`` command: a model as a TensorFlow SavedModel (TF Serving), LiteRT or ONNX artifact.

The target is checked before the model is loaded (a wrong suffix, a missing
folder or an existing artifact fail at once, without TensorFlow's start-up);
:func:`keraszoo.models.export.export_model` writes it next to the target and
renames it into place, so an interrupted or failed export leaves nothing behind.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_model_options
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import load_model
from keraszoo.cli._shared import say

#: keraszoo.models.export.FORMATS, repeated so that parsing the command line imports no TensorFlow.
FORMATS = ("tf_saved_model", "litert", "onnx")
#: keraszoo.models.export.SUFFIXES (the single-file formats), for the same reason.
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}
#: keraszoo.models.export.CONVERTER_PACKAGES: checked before the model is loaded.
CONVERTER_PACKAGES = {"onnx": "tf2onnx"}
_KINDS = {"tf_saved_model": "TensorFlow SavedModel", "litert": "LiteRT model", "onnx": "ONNX model"}


def register(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "export",
                    "export a model for serving: a TensorFlow SavedModel, a LiteRT or an ONNX file",
                    examples("keraszoo export vae_mnist -o vae_mnist_savedmodel     # serve, encode, decode, reconstruct, sample",
                             "keraszoo export vae_mnist -o serving/vae_mnist/1      # TF Serving's NAME/VERSION (mkdir the parent)",
                             "keraszoo export vae_mnist --format litert -o vae_mnist.tflite",
                             "keraszoo export runs/my_ae --format onnx -o my_ae.onnx --force"))
    add_model_options(p)
    p.add_argument("-o", "--output", metavar="PATH", type=lambda text: Path(text).expanduser(), required=True,
                   help="the SavedModel folder, or the .tflite / .onnx file; its parent folder must exist")
    p.add_argument("--format", choices=FORMATS, default="tf_saved_model",
                   help="tf_saved_model (default): endpoints serve, encode, decode, reconstruct and, for "
                        "generative models, sample(n, seed); litert / onnx: the reconstruction only")
    p.add_argument("--force", action="store_true", help="replace an earlier export at PATH")
    p.set_defaults(func=cmd_export)


def _check_output(args):
    """The checks of :func:`keraszoo.models.export.check_target`, worded for the command line."""
    path, fmt = args.output, args.format
    suffix = path.suffix.lower()
    if fmt in SUFFIXES and suffix != SUFFIXES[fmt]:
        raise UsageError(f"--format {fmt} writes one {SUFFIXES[fmt]} file; -o must end with {SUFFIXES[fmt]}, "
                         f"got {str(path)!r}.")
    if fmt == "tf_saved_model" and suffix in SUFFIXES.values():
        other = next(name for name, s in SUFFIXES.items() if s == suffix)
        raise UsageError(f"a tf_saved_model export is a folder, but {str(path)!r} is named like a {suffix} file; "
                         f"add --format {other} or give a folder name.")
    if not path.parent.is_dir():
        raise CommandError(f"the folder {str(path.parent)!r} of -o {str(path)!r} does not exist; create it first.")
    empty_dir = path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    if (path.exists() or path.is_symlink()) and not empty_dir and not args.force:
        raise CommandError(f"{str(path)!r} already exists; pass --force to replace it.")
    package = CONVERTER_PACKAGES.get(fmt)
    if package is not None and importlib.util.find_spec(package) is None:
        raise CommandError(f"{fmt} export needs the {package} converter, which is not installed: "
                           f"pip install {package} (or pip install 'keraszoo[export]').")


def cmd_export(args):
    _check_output(args)
    model = load_model(args)
    from keraszoo.models.export import describe_endpoints
    from keraszoo.models.export import export_model

    say(args, f"Exporting as {args.format} ...")
    try:
        path = export_model(model, args.output, format=args.format, verbose=False, overwrite=args.force)
    except (ImportError, FileExistsError) as err:
        raise CommandError(str(err)) from err
    endpoints = describe_endpoints(model, args.format)
    say(args, f"Wrote a {_KINDS[args.format]} to {path}\n  " + "\n  ".join(endpoints))
    return 0
