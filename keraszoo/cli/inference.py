"""The commands that run a model on inputs: reconstruct, encode, decode, sample, interpolate."""

from __future__ import annotations

from pathlib import Path

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_image_options
from keraszoo.cli._shared import add_model_options
from keraszoo.cli._shared import check_inputs_exist
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import load_model
from keraszoo.cli._shared import map_batches
from keraszoo.cli._shared import np
from keraszoo.cli._shared import output
from keraszoo.cli._shared import plural
from keraszoo.cli._shared import read_array
from keraszoo.cli._shared import read_image_input
from keraszoo.cli._shared import read_images
from keraszoo.cli._shared import save_arrays
from keraszoo.cli._shared import say
from keraszoo.cli._shared import steps
from keraszoo.cli._shared import to_numpy
from keraszoo.cli._shared import write_images


def register(subparsers, common_parent):
    for add in (_add_reconstruct, _add_encode, _add_decode, _add_sample, _add_interpolate):
        add(subparsers, common_parent)


def _model_command(subparsers, common_parent, name, func, help, *example_lines, images=False):
    """A sub-parser for a command that loads a model: NAME, the model loading options, ``func`` as handler."""
    parser = add_command(subparsers, common_parent, name, help, examples(*example_lines))
    add_model_options(parser)
    if images:
        add_image_options(parser)
    parser.add_argument("--labels", type=_label_list, default=None,
                        help="conditional models (cvae) only: the class of the images, one integer for all "
                             "or a comma list, one per image")
    parser.set_defaults(func=func)
    return parser


def _label_list(text):
    """``3`` or ``0,1,2``: integer class labels."""
    import argparse

    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or comma-separated integers, got {text!r}") from None
    return values


def _given(args, model, count):
    """``{"labels": array}`` for a conditional model (from ``--labels``), ``{}`` for the others."""
    if not model.requires_labels:
        if args.labels is not None:
            raise CommandError(f"--labels is for conditional models; {args.name} ({type(model).__name__}) takes no labels.")
        return {}
    if args.labels is None:
        raise CommandError(f"{args.name} ({type(model).__name__}) is a conditional model: give the class with --labels "
                           f"(one integer in [0, {model.num_classes}) for all, or a comma list of {count}).")
    labels = np().asarray(args.labels)
    if len(labels) == 1:
        labels = np().full(count, labels[0])
    if len(labels) != count:
        raise CommandError(f"--labels gives {len(labels)} labels for {plural(count, 'image')}; give one for all or one per image.")
    return model.label_kwargs(labels)


def _map_given(args, fn, x, given, label):
    """``map_batches`` of ``fn``; with ``given`` labels, every batch with its own."""
    if not given:
        return map_batches(args, fn, x, label)
    labels = given["labels"]
    return map_batches(args, lambda index: fn(x[index], labels[index]), np().arange(len(x)), label)


def _add_reconstruct(subparsers, common_parent):
    p = _model_command(subparsers, common_parent, "reconstruct", cmd_reconstruct,
                       "reconstruct images and draw them under the originals",
                       "keraszoo reconstruct vae_mnist digit1.png digit2.png -o recon.png",
                       "keraszoo reconstruct runs/my_vae my_digits/ -o recon.png --cols 8",
                       "keraszoo reconstruct vae_mnist photo.png --resize --color-mode grayscale -o recon.png",
                       images=True)
    p.add_argument("images", metavar="IMAGES", nargs="+", help="PNG files or folders of them")
    p.add_argument("-o", "--output", type=output(".png", ".npy"), required=True,
                   help="grid .png (originals above reconstructions), or .npy for the array")
    p.add_argument("--cols", type=positive_int, default=10, help="images per row (default: 10)")


def cmd_reconstruct(args):
    check_inputs_exist(args.images, "image")
    model = load_model(args)
    x, _ = read_images(args, model, args.images)
    recon = _map_given(args, model.reconstruct, x, _given(args, model, len(x)), "Reconstructing")
    if args.output.suffix.lower() == ".npy":
        write_images(recon, args.output)
    else:
        from keraszoo import visualization as vis

        vis.save_comparison(x, recon, args.output, ncols=min(len(x), args.cols))
    say(args, f"Wrote {plural(len(x), 'reconstruction')} to {args.output}"
              + (" (originals above reconstructions)" if args.output.suffix.lower() == ".png" else ""))
    return 0


def _add_encode(subparsers, common_parent):
    p = _model_command(subparsers, common_parent, "encode", cmd_encode, "encode images to latent codes",
                       "keraszoo encode vae_mnist my_digits/ -o codes.npy",
                       "keraszoo encode vae_mnist images.npz --key x_test -o codes.npz   # .npz keeps file names",
                       images=True)
    p.add_argument("input", metavar="INPUT", help="image folder, image file, .npy or .npz of images "
                                                  "(uint8 0..255 or floats in [0, 1])")
    p.add_argument("-o", "--output", type=output(".npy", ".npz"), required=True,
                   help="codes (N, latent_dim) as .npy (a VQ-VAE: int32 code indices (N, h, w)), or .npz with "
                        "'codes' (and 'files' for images)")
    p.add_argument("--key", help="array to read from an .npz INPUT (default: x_train, x, images or its only array)")


def cmd_encode(args):
    check_inputs_exist([args.input])
    model = load_model(args)
    x, files = read_image_input(args, model, args.input)
    codes = _map_given(args, model.encode, x, _given(args, model, len(x)), "Encoding")
    codes = codes if codes.dtype.kind in "iu" else codes.astype("float32")  # a VQ-VAE's code indices stay int32
    if args.output.suffix.lower() == ".npz":
        extra = {"files": np().asarray(files)} if files is not None else {}
        save_arrays(args.output, codes=codes, **extra)
    else:
        save_arrays(args.output, codes)
    say(args, f"Wrote codes of shape {codes.shape} to {args.output}"
              + (" (rows in sorted file order)" if files is not None and len(files) > 1 else ""))
    return 0


def _add_decode(subparsers, common_parent):
    p = _model_command(subparsers, common_parent, "decode", cmd_decode, "decode latent codes to images",
                       "keraszoo decode vae_mnist codes.npy -o decoded.png",
                       "keraszoo decode vae_mnist codes.npz -o decoded.npy")
    p.add_argument("codes", metavar="CODES", help=".npy of shape (N, latent_dim) (a VQ-VAE: code indices (N, h, w) "
                                                  "or vectors (N, h, w, latent_dim)) or .npz with 'codes'")
    p.add_argument("-o", "--output", type=output(".png", ".npy"), required=True, help="grid .png or .npy array")
    p.add_argument("--key", help="array to read from an .npz (default: codes, z or its only array)")
    p.add_argument("--cols", type=positive_int, default=10, help="images per row (default: 10)")


def cmd_decode(args):
    check_inputs_exist([args.codes], "codes file")
    if Path(args.codes).suffix.lower() not in (".npy", ".npz"):
        raise UsageError(f"CODES must be a .npy or .npz file, got {str(args.codes)!r}.")
    codes = read_array(args.codes, args.key, ("codes", "z"), "codes")
    if codes.dtype.kind not in "iuf":
        raise CommandError(f"{args.codes} holds {codes.dtype} values; expected float latent codes.")
    if codes.dtype.kind == "f":
        codes = np().asarray(codes, dtype="float32")
    model = load_model(args)
    # One example's codes: (latent_dim,), or a VQ-VAE's (h, w) grid of indices / (h, w, latent_dim) vectors.
    shapes = [tuple(model.code_shape)]
    shapes += [tuple(model.quantized_shape)] if model.quantized_shape is not None else []
    if codes.ndim in (len(s) for s in shapes) and tuple(codes.shape) in shapes:
        codes = codes[None]
    if tuple(codes.shape[1:]) not in shapes:
        raise CommandError(
            f"{args.codes} holds an array of shape {codes.shape}; {args.name} decodes codes of shape "
            + " or ".join(f"(N, {', '.join(map(str, s))})" for s in shapes) + "."
        )
    if not np().all(np().isfinite(codes)):
        raise CommandError(f"{args.codes} contains NaN or infinite codes.")
    images = _map_given(args, model.decode, codes, _given(args, model, len(codes)), "Decoding")
    write_images(images, args.output, min(len(images), args.cols))
    say(args, f"Wrote {plural(len(images), 'decoded image')} to {args.output}")
    return 0


def _require_generative(model, name, what):
    if model.is_generative:
        return
    from keraszoo.models import list_variants

    generative = [f"{key} ({cls.__name__})" for key, cls in sorted(list_variants().items()) if cls.is_generative]
    raise CommandError(
        f"{name} ({type(model).__name__}, variant {model.variant}) is not a generative model: "
        f"it has no prior to {what} from. Use a generative variant: {', '.join(generative)}."
    )


def _add_sample(subparsers, common_parent):
    p = _model_command(subparsers, common_parent, "sample", cmd_sample, "draw images from a generative model's prior",
                       "keraszoo sample vae_mnist -n 64 -o samples.png --seed 0",
                       "keraszoo sample cvae_mnist -n 16 --labels 3 -o threes.png   # a conditional model: the class",
                       "keraszoo sample hf://org/my-vae -n 1000 -o samples.npy")
    p.add_argument("-n", "--num", type=positive_int, default=64, help="number of samples (default: 64)")
    p.add_argument("-o", "--output", type=output(".png", ".npy"), required=True, help="grid .png or .npy array")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    p.add_argument("--cols", type=positive_int, default=None, help="images per row (default: a square grid)")


def _check_memory(count, image_shape, flag):
    """Refuses ``count`` images beyond what one model call returns (``checks.MAX_VALUES_PER_CALL``, as the API)."""
    from keraszoo.models import checks

    checks.check_output_size(f"{flag} {count}", count, image_shape,
                             lambda most: f"ask for at most {most:,} per run, each run with its own --seed")


def cmd_sample(args):
    model = load_model(args)
    _require_generative(model, args.name, "sample")
    _check_memory(args.num, model.image_shape, "-n")
    images = to_numpy(model.sample(args.num, seed=args.seed, **_given(args, model, args.num)))
    write_images(images, args.output, args.cols)
    say(args, f"Wrote {plural(len(images), 'sample')} to {args.output}"
              + (f" (seed {args.seed})" if args.seed is not None else ""))
    return 0


def _add_interpolate(subparsers, common_parent):
    p = _model_command(subparsers, common_parent, "interpolate", cmd_interpolate,
                       "decode the straight line between the codes of two images",
                       "keraszoo interpolate vae_mnist three.png eight.png --steps 10 -o strip.png", images=True)
    p.add_argument("start", metavar="A", help="first image (PNG)")
    p.add_argument("end", metavar="B", help="last image (PNG)")
    p.add_argument("--steps", type=steps, default=10, help="images in the strip, end points included (default: 10)")
    p.add_argument("-o", "--output", type=output(".png", ".npy"), required=True, help="strip .png or .npy array")


def cmd_interpolate(args):
    check_inputs_exist([args.start, args.end], "image")
    model = load_model(args)
    x, _ = read_images(args, model, [args.start, args.end])
    given = _given(args, model, 2)  # a conditional model: the labels of A and B
    ends = {"labels": int(given["labels"][0]), "end_labels": int(given["labels"][1])} if given else {}
    images = to_numpy(model.interpolate(x[0], x[1], steps=args.steps, **ends))
    if args.output.suffix.lower() == ".npy":
        write_images(images, args.output)
    else:
        from keraszoo import visualization as vis

        vis.save_strip(images, args.output)
    say(args, f"Wrote a {args.steps}-step interpolation to {args.output}")
    return 0
