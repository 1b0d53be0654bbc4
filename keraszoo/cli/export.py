"""The ``export`` command: a model as a TensorFlow SavedModel (TF Serving), LiteRT or ONNX artifact.

The target is checked before the model is loaded, by the same TF-free checks
as the Python API (:mod:`keraszoo.export_targets`): a wrong suffix, a missing
folder or an existing artifact fail at once, without TensorFlow's start-up;
:func:`keraszoo.models.export.export_model` writes it next to the target and
renames it into place, so an interrupted or failed export leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_model_options
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import load_model
from keraszoo.cli._shared import say
from keraszoo.export_targets import CONVERTER_PACKAGES  # noqa: F401 - tests patch it
from keraszoo.export_targets import FORMATS
from keraszoo.export_targets import check_converter
from keraszoo.export_targets import check_target

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
    p.add_argument("--force", "--overwrite", dest="force", action="store_true",
                   help="replace an earlier export at PATH (never a folder or file that is not an export)")
    p.set_defaults(func=cmd_export)


def _check_output(args):
    """:func:`keraszoo.export_targets.check_target`, its remedies worded for the command line."""
    try:
        check_target(args.output, args.format, args.force, format_hint="add --format {}", overwrite_hint="pass --force to replace it")
    except ValueError as err:
        raise UsageError(str(err)) from err
    except (FileNotFoundError, FileExistsError) as err:
        raise CommandError(str(err)) from err
    try:
        check_converter(args.format)
    except ImportError as err:
        raise CommandError(str(err)) from err


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
