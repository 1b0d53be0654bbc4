"""``keraszoo demo``: a pretrained model on the bundled MNIST digits, as pictures and metrics."""

from __future__ import annotations

import json
from pathlib import Path

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_model_options
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import load_model
from keraszoo.cli._shared import map_batches
from keraszoo.cli._shared import say
from keraszoo.cli._shared import shape_text
from keraszoo.cli._shared import steps
from keraszoo.cli._shared import to_numpy
from keraszoo.utils import atomic_write_text

DEMO_MODEL = "vae_mnist"


def register(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "demo",
                    "run a pretrained model on the bundled MNIST digits and write pictures",
                    examples("keraszoo demo", "keraszoo demo --model runs/my_vae --out demo/",
                             "keraszoo demo --seed 1 --samples 100"))
    p.add_argument("--model", default=DEMO_MODEL,
                   help=f"manifest name, hf://org/repo[@rev] or a save_pretrained folder (default: {DEMO_MODEL})")
    p.add_argument("--out", default="keraszoo-demo", help="output folder (default: ./keraszoo-demo/)")
    p.add_argument("--num", type=positive_int, default=16, help="digits in reconstructions.png (default: 16)")
    p.add_argument("--samples", type=positive_int, default=64, help="images in samples.png (default: 64)")
    p.add_argument("--steps", type=steps, default=10, help="steps per interpolation (default: 10)")
    p.add_argument("--rows", type=positive_int, default=4, help="interpolations in interpolation.png (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior samples (default: 0)")
    add_model_options(p, name=False)
    p.set_defaults(func=cmd_demo)


def _demo_pairs(labels, count):
    """Index pairs (first digit d, first digit 9 - d) for d = 0, 1, ...: different classes."""
    first = {}
    for index, label in enumerate(labels):
        first.setdefault(int(label), index)
    pairs = [(first[d], first[9 - d]) for d in range(10) if d in first and 9 - d in first and d != 9 - d]
    if not pairs:
        pairs = [(0, len(labels) - 1)]
    return pairs[:count]


def _conform_digits(args, x, image_shape):
    """The 28x28 grayscale sample digits converted to another model input shape (demo only)."""
    from keraszoo.data.images import prepare_images

    channels = int(image_shape[-1])
    color_mode = {1: "grayscale", 3: "rgb"}.get(channels)
    if color_mode is None:
        raise CommandError(f"The demo cannot feed {channels}-channel images to the model (input {image_shape}).")
    x = prepare_images(x, image_shape, resize=True, color_mode=color_mode)
    say(args, f"  note: the sample digits are 28x28 grayscale; converted to {shape_text(image_shape)} for this model.")
    return x


def cmd_demo(args):
    from keraszoo import visualization as vis
    from keraszoo.samples import load_mnist_sample
    from keraszoo.version import __version__

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} exists and is not a directory.")
    args.name = args.model
    model = load_model(args)
    from keraszoo.evaluation import format_table
    from keraszoo.evaluation import reconstruction_metrics

    x, labels = load_mnist_sample()
    if tuple(model.image_shape) != tuple(x.shape[1:]):
        x = _conform_digits(args, x, model.image_shape)
    out.mkdir(parents=True, exist_ok=True)

    say(args, f"Reconstructing the {len(x)} bundled MNIST test digits ...")
    metrics = reconstruction_metrics(model, x)
    say(args, format_table(metrics))
    written = []

    shown = x[: args.num]
    recon = map_batches(args, model.reconstruct, shown, "Reconstructing")
    vis.save_comparison(shown, recon, out / "reconstructions.png", ncols=min(len(shown), 16))
    written.append("reconstructions.png")
    say(args, f"  reconstructions.png  {len(shown)} digits (top) and their reconstructions (bottom)")

    if model.is_generative:
        samples = to_numpy(model.sample(args.samples, seed=args.seed))
        vis.save_grid(samples, out / "samples.png")
        written.append("samples.png")
        say(args, f"  samples.png          {args.samples} samples from the prior (seed {args.seed})")
    else:
        (out / "samples.png").unlink(missing_ok=True)  # do not leave an older model's samples behind
        say(args, f"  samples.png          skipped: {type(model).__name__} (variant {model.variant}) "
                  "is not a generative model")

    pairs = _demo_pairs(labels, args.rows)
    start = x[[a for a, _ in pairs]]
    end = x[[b for _, b in pairs]]
    strips = to_numpy(model.interpolate(start, end, steps=args.steps))
    vis.save_strip(strips, out / "interpolation.png")
    written.append("interpolation.png")
    say(args, f"  interpolation.png    {len(pairs)} interpolations in {args.steps} steps "
              f"({', '.join(f'{labels[a]}->{labels[b]}' for a, b in pairs)})")

    report = {
        "model": args.model,
        "class": type(model).__name__,
        "variant": model.variant,
        "image_shape": [int(d) for d in model.image_shape],
        "latent_dim": int(model.latent_dim),
        "data": f"keraszoo bundled MNIST sample: the first {len(x)} test digits",
        "num_images": int(len(x)),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "files": written,
        "seed": args.seed,
        "keraszoo_version": __version__,
    }
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    written.append("metrics.json")
    say(args, f"  metrics.json         the metrics above\nWrote {len(written)} files to {out}")
    return 0
