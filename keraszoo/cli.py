"""The ``keraszoo`` command line (also ``python -m keraszoo``).

Commands::

    keraszoo list [PATTERN] [--json]            published pretrained models (no TensorFlow import)
    keraszoo info NAME [--json]                 one model's card: architecture, data, recipe, metrics
    keraszoo demo [--model vae_mnist]           reconstructions, samples, interpolations of the sample digits
    keraszoo reconstruct NAME IMAGES... -o grid.png
    keraszoo encode NAME INPUT -o codes.npy     INPUT: image folder, image, .npy or .npz
    keraszoo decode NAME codes.npy -o grid.png
    keraszoo sample NAME -n 64 -o grid.png [--seed S]
    keraszoo interpolate NAME A.png B.png --steps 10 -o strip.png
    keraszoo evaluate NAME [--data mnist]       the zoo's metrics (keraszoo.evaluate)
    keraszoo train ...                          training/train.py
    keraszoo finetune NAME --data DIR --out DIR training/finetune.py
    keraszoo push DIR ORG/REPO                  upload a save_pretrained folder to the Hub

``NAME`` is anything :func:`keraszoo.load` accepts: a manifest name
(``vae_mnist``), ``hf://org/repo[@revision]`` or a folder written by
:func:`keraszoo.save_pretrained`.

Exit status: 0 success, 2 bad command line, 1 any other error (reported on one
line, ``keraszoo: error: ...``; ``--debug`` shows the traceback). TensorFlow is
imported only by the commands that run a model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from keraszoo.argtypes import positive_int
import zipfile
from pathlib import Path

__all__ = ["main", "build_parser", "CommandError", "UsageError"]

PROG = "keraszoo"
FORWARDED = ("train", "finetune")
DEMO_MODEL = "vae_mnist"
BATCH_SIZE = 256


class CommandError(Exception):
    """An error reported as ``keraszoo: error: <message>`` with exit status 1."""


class UsageError(CommandError):
    """A bad command line found after parsing; exit status 2."""


# --------------------------------------------------------------------------- helpers


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in epilogs as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32)


def _examples(*lines):
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)




def _steps(text):
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 steps (both end points), got {value}")
    return value


def _output(*suffixes):
    """argparse type: an output path ending with one of ``suffixes``."""

    def check(text):
        path = Path(text).expanduser()
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{text!r} must end with {' or '.join(suffixes)}"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
        return path

    check.__name__ = "output file"
    return check


def _say(args, *parts):
    """Informational output: suppressed by --quiet, on stderr when stdout carries --json."""
    if not args.quiet:
        print(*parts, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def _plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _one_line(err) -> str:
    """An exception as a single line of text."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    if isinstance(err, (CommandError, ValueError, OSError, KeyError, NotImplementedError)):
        return text or type(err).__name__
    name = type(err).__name__
    return f"{name}: {text} (run with --debug for the traceback)" if text else name


def _np():
    import numpy as np

    return np


def _to_numpy(tensor):
    from keras import ops

    return _np().asarray(ops.convert_to_numpy(tensor))


def _map_batches(args, fn, x, label, batch_size=BATCH_SIZE):
    """``fn`` over ``x`` in batches, as NumPy; a Keras progress bar for more than one batch."""
    np = _np()
    n = len(x)
    bar = None
    if not args.quiet and n > batch_size:
        import keras

        _say(args, f"{label} {n} images")
        bar = keras.utils.Progbar(n, unit_name="image")
    out = []
    for start in range(0, n, batch_size):
        out.append(_to_numpy(fn(x[start:start + batch_size])))
        if bar is not None:
            bar.update(min(n, start + batch_size))
    return np.concatenate(out, axis=0)


def _check_inputs_exist(paths, what="input"):
    for path in paths:
        if not Path(path).expanduser().exists():
            raise CommandError(f"{what} {str(path)!r} does not exist.")


def _load_model(args):
    """``keraszoo.load(args.name)``; the spec is resolved (and checked) before TensorFlow is imported."""
    from keraszoo.weights import loader

    _say(args, f"Loading {args.name} ...")
    model = loader.load(args.name, revision=args.revision, source=args.source, compile=False)
    _say(args, f"  {type(model).__name__} (variant {model.variant}), input {_shape_text(model.image_shape)}, "
               f"latent_dim {model.latent_dim}")
    return model


def _shape_text(shape):
    return "x".join(str(int(d)) for d in shape)


def _read_images(args, model, paths):
    """Image files / folders -> float32 (N, H, W, C) checked against the model's input."""
    from keraszoo import visualization as vis

    try:
        return vis.load_images(paths, model.image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as err:
        raise CommandError(str(err)) from err


def _read_array(path, key, candidates, what):
    np = _np()
    path = Path(path).expanduser()
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is not None:
                if key not in names:
                    raise CommandError(f"{path} has no array {key!r}; it holds {names}.")
                return archive[key]
            for name in candidates:
                if name in names:
                    return archive[name]
            if len(names) == 1:
                return archive[names[0]]
            raise CommandError(
                f"{path} holds {names}; name the {what} {' or '.join(candidates)}, or pass --key."
            )
    except (ValueError, EOFError, zipfile.BadZipFile) as err:  # pickled object arrays, corrupt files
        raise CommandError(f"Cannot read {path}: {err}") from err


def _write_images(args, images, path, ncols=None):
    """``.png``: a grid (see keraszoo.visualization); ``.npy``: the float32 array."""
    from keraszoo import visualization as vis

    np = _np()
    path = Path(path)
    if path.suffix.lower() == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(images, dtype="float32"))
    else:
        vis.save_grid(images, path, ncols)
    return path


def _add_model_options(parser, name=True):
    if name:
        parser.add_argument("name", metavar="NAME",
                            help="manifest name (see 'keraszoo list'), hf://org/repo[@rev] or a "
                                 "save_pretrained folder")
    group = parser.add_argument_group("model loading")
    group.add_argument("--revision", help="Hub branch, tag or commit (hf:// models)")
    group.add_argument("--source", choices=("auto", "bundled", "hub"), default="auto",
                       help="for manifest names: the copy bundled with keraszoo or the Hub (default: auto)")


def _add_image_options(parser):
    group = parser.add_argument_group("input images")
    group.add_argument("--resize", action="store_true",
                       help="resize images of another size to the model's input size instead of refusing them")
    group.add_argument("--color-mode", choices=("grayscale", "rgb"), default=None,
                       help="convert images to this channel count (color to gray, alpha dropped); "
                            "must match the model's input")


# --------------------------------------------------------------------------- list / info


def _manifest_rows(names):
    from keraszoo.weights import manifest

    rows = []
    for name in names:
        entry = manifest.info(name)
        config = entry["model"].get("config", {})
        rows.append({
            "name": name,
            "class": entry["model"]["class"],
            "variant": entry["model"]["variant"],
            "latent_dim": config.get("latent_dim"),
            "architecture": config.get("architecture"),
            "dataset": entry["dataset"]["name"],
            "input_shape": entry["input"]["shape"],
            "bundled": bool(entry["bundled_available"]),
            "repo_id": entry["hub"]["repo_id"],
            "revision": entry["hub"]["revision"],
            "description": entry.get("description"),
            "metrics": entry["metrics"],
        })
    return rows


def cmd_list(args):
    from keraszoo.weights import manifest

    rows = _manifest_rows(manifest.list_models(args.pattern))
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        if args.pattern:
            print(f"No pretrained model matches {args.pattern!r}.")
        else:
            print("No pretrained models are published in this version of keraszoo yet. Load your own with "
                  "keraszoo.load('hf://org/repo') or a save_pretrained folder.")
        return 0
    header = ("NAME", "MODEL", "DATASET", "INPUT", "LATENT", "WEIGHTS")
    table = [header] + [
        (r["name"], f"{r['class']} ({r['architecture'] or '?'})", r["dataset"], _shape_text(r["input_shape"]),
         str(r["latent_dim"]), "bundled" if r["bundled"] else f"hf://{r['repo_id']}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _format_number(value):
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _print_mapping(title, mapping, indent="  "):
    if not mapping:
        return
    print(f"{title}:")
    width = max(len(str(k)) for k in mapping)
    for key, value in mapping.items():
        print(f"{indent}{str(key).ljust(width)}  {_format_number(value)}")


def _info_local(args, path):
    metadata_path = path / "metadata.json"
    if not metadata_path.is_file():
        raise CommandError(f"{path} has no metadata.json: expected a folder written by keraszoo.save_pretrained().")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CommandError(f"{metadata_path} is not valid JSON: {err}") from err
    if args.json:
        print(json.dumps(metadata, indent=2, sort_keys=True))
        return 0
    model = metadata.get("model") or {}
    shape = (metadata.get("input") or {}).get("image_shape") or []
    print(f"{path}  (save_pretrained folder)")
    print(f"  model:    {model.get('class')} (variant {model.get('variant')}, {model.get('architecture')}), "
          f"latent_dim {model.get('latent_dim')}, {metadata.get('parameter_count')} parameters")
    print(f"  input:    {_shape_text(shape)} float32 in [0, 1]")
    if metadata.get("dataset"):
        print(f"  dataset:  {metadata['dataset'].get('name')}")
    print(f"  saved:    {metadata.get('date_saved')} with keraszoo {metadata.get('keraszoo_version')}, "
          f"keras {metadata.get('keras_version')}")
    recipe = metadata.get("recipe") or {}
    if recipe.get("command"):
        print(f"  command:  {recipe['command']}")
    _print_mapping("metrics", metadata.get("metrics") or {})
    return 0


def cmd_info(args):
    from keraszoo.weights import loader, manifest

    kind, value, _ = loader.parse_spec(args.name)
    if kind == "local":
        return _info_local(args, value)
    if kind == "hub":
        raise CommandError(
            f"'info' reads the zoo's manifest; {args.name!r} is a Hub repository. Load it with "
            f"'keraszoo reconstruct {args.name} ...' or read its README.md on the Hub."
        )
    entry = manifest.info(value)
    if args.json:
        print(json.dumps(entry, indent=2, sort_keys=True))
        return 0
    model, config = entry["model"], entry["model"].get("config", {})
    contract, hub, recipe = entry["input"], entry["hub"], entry["recipe"]
    print(value + (f" - {entry['description']}" if entry.get("description") else ""))
    print(f"  model:    {model['class']} (variant {model['variant']}, {config.get('architecture')}), "
          f"latent_dim {config.get('latent_dim')}")
    print(f"  input:    {_shape_text(contract['shape'])} {contract['dtype']} in "
          f"[{contract['value_range'][0]:g}, {contract['value_range'][1]:g}], binarization {contract['binarization']}")
    dataset = entry["dataset"]
    print(f"  dataset:  {dataset['name']}" + (f" ({dataset['split']})" if dataset.get("split") else ""))
    where = (f"hf://{hub['repo_id']}@{hub['revision']}" if hub.get("revision")
             else f"hf://{hub['repo_id']} (not yet published on the Hub)")
    print(f"  weights:  {where}" + (", bundled with keraszoo" if entry["bundled_available"] else ""))
    print(f"  trained:  {recipe['epochs']} epochs, batch {recipe['batch_size']}, seed {recipe['seed']}, "
          f"on {recipe['hardware']} in {recipe['wall_time_s']:.0f} s")
    print(f"  command:  {recipe['command']}")
    print(f"  license:  weights {entry['license']['weights']}, data {entry['license']['data']}")
    print(f"  paper:    {entry['paper']['title']} {entry['paper'].get('url', '')}".rstrip())
    _print_mapping("metrics", entry["metrics"])
    print(f"load it:    keraszoo.load({value!r})")
    return 0


# --------------------------------------------------------------------------- model commands


def cmd_reconstruct(args):
    _check_inputs_exist(args.images, "image")
    model = _load_model(args)
    x, _ = _read_images(args, model, args.images)
    recon = _map_batches(args, model.reconstruct, x, "Reconstructing")
    if args.output.suffix.lower() == ".npy":
        _write_images(args, recon, args.output)
    else:
        from keraszoo import visualization as vis

        vis.save_comparison(x, recon, args.output, ncols=min(len(x), args.cols))
    _say(args, f"Wrote {_plural(len(x), 'reconstruction')} to {args.output}"
               + (" (originals above reconstructions)" if args.output.suffix.lower() == ".png" else ""))
    return 0


def _read_encode_input(args, model):
    np = _np()
    path = Path(args.input).expanduser()
    if path.is_dir() or path.suffix.lower() not in (".npy", ".npz"):
        x, files = _read_images(args, model, [path])
        return x, [str(f) for f in files]
    from keraszoo import data

    array = _read_array(path, args.key, ("x_train", "x", "images"), "images")
    try:
        x = data.prepare_images(array, model.image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as err:
        raise CommandError(f"{path}: {err}") from err
    return np.asarray(x), None


def cmd_encode(args):
    np = _np()
    _check_inputs_exist([args.input])
    model = _load_model(args)
    x, files = _read_encode_input(args, model)
    codes = _map_batches(args, model.encode, x, "Encoding").astype("float32")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".npz":
        extra = {"files": np.asarray(files)} if files is not None else {}
        np.savez(args.output, codes=codes, **extra)
    else:
        np.save(args.output, codes)
    _say(args, f"Wrote codes of shape {codes.shape} to {args.output}"
               + (" (rows in sorted file order)" if files is not None and len(files) > 1 else ""))
    return 0


def cmd_decode(args):
    np = _np()
    _check_inputs_exist([args.codes], "codes file")
    if Path(args.codes).suffix.lower() not in (".npy", ".npz"):
        raise UsageError(f"CODES must be a .npy or .npz file, got {str(args.codes)!r}.")
    codes = _read_array(args.codes, args.key, ("codes", "z"), "codes")
    if codes.dtype.kind not in "iuf":
        raise CommandError(f"{args.codes} holds {codes.dtype} values; expected float latent codes.")
    codes = np.asarray(codes, dtype="float32")
    if codes.ndim == 1:
        codes = codes[None]
    model = _load_model(args)
    if codes.ndim != 2 or codes.shape[1] != model.latent_dim:
        raise CommandError(
            f"{args.codes} holds an array of shape {codes.shape}; {args.name} decodes codes of shape "
            f"(N, {model.latent_dim})."
        )
    if not np.all(np.isfinite(codes)):
        raise CommandError(f"{args.codes} contains NaN or infinite codes.")
    images = _map_batches(args, model.decode, codes, "Decoding")
    _write_images(args, images, args.output, min(len(images), args.cols))
    _say(args, f"Wrote {_plural(len(images), 'decoded image')} to {args.output}")
    return 0


def _require_generative(model, name, what):
    if not getattr(model, "is_generative", False):
        raise CommandError(
            f"{name} ({type(model).__name__}, variant {model.variant}) is not a generative model: "
            f"it has no prior to {what} from. Use a VAE, HierarchicalVAE or AdversarialAutoEncoder "
            "(variants vae, hvae, aae)."
        )


def cmd_sample(args):
    model = _load_model(args)
    _require_generative(model, args.name, "sample")
    images = _to_numpy(model.sample(args.num, seed=args.seed))
    ncols = args.cols
    _write_images(args, images, args.output, ncols)
    _say(args, f"Wrote {_plural(len(images), 'sample')} to {args.output}"
               + (f" (seed {args.seed})" if args.seed is not None else ""))
    return 0


def cmd_interpolate(args):
    _check_inputs_exist([args.start, args.end], "image")
    model = _load_model(args)
    x, _ = _read_images(args, model, [args.start, args.end])
    images = _to_numpy(model.interpolate(x[0], x[1], steps=args.steps))
    if args.output.suffix.lower() == ".npy":
        _write_images(args, images, args.output)
    else:
        from keraszoo import visualization as vis

        vis.save_strip(images, args.output)
    _say(args, f"Wrote a {args.steps}-step interpolation to {args.output}")
    return 0


# --------------------------------------------------------------------------- demo


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
    from keraszoo import visualization as vis

    np = _np()
    h, w, c = (int(d) for d in image_shape)
    if (h, w) != tuple(x.shape[1:3]):
        x = np.stack([vis._resize(img, h, w) for img in x])
    if c == 3:
        x = np.repeat(x, 3, axis=-1)
    elif c != 1:
        raise CommandError(f"The demo cannot feed {c}-channel images to the model (input {image_shape}).")
    _say(args, f"  note: the sample digits are 28x28 grayscale; converted to {_shape_text(image_shape)} for this model.")
    return x.astype("float32")


def cmd_demo(args):
    np = _np()
    from keraszoo import visualization as vis
    from keraszoo.samples import load_mnist_sample
    from keraszoo.version import __version__

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} exists and is not a directory.")
    args.name = args.model
    model = _load_model(args)
    from keraszoo.evaluation import format_table, reconstruction_metrics

    x, labels = load_mnist_sample()
    if tuple(model.image_shape) != tuple(x.shape[1:]):
        x = _conform_digits(args, x, model.image_shape)
    out.mkdir(parents=True, exist_ok=True)

    _say(args, f"Reconstructing the {len(x)} bundled MNIST test digits ...")
    metrics = reconstruction_metrics(model, x)
    _say(args, format_table(metrics))
    written = []

    shown = x[: args.num]
    recon = _map_batches(args, model.reconstruct, shown, "Reconstructing")
    vis.save_comparison(shown, recon, out / "reconstructions.png", ncols=min(len(shown), 16))
    written.append("reconstructions.png")
    _say(args, f"  reconstructions.png  {len(shown)} digits (top) and their reconstructions (bottom)")

    if getattr(model, "is_generative", False):
        samples = _to_numpy(model.sample(args.samples, seed=args.seed))
        vis.save_grid(samples, out / "samples.png")
        written.append("samples.png")
        _say(args, f"  samples.png          {args.samples} samples from the prior (seed {args.seed})")
    else:
        (out / "samples.png").unlink(missing_ok=True)  # do not leave an older model's samples behind
        _say(args, f"  samples.png          skipped: {type(model).__name__} (variant {model.variant}) "
                   "is not a generative model")

    pairs = _demo_pairs(labels, args.rows)
    start = x[[a for a, _ in pairs]]
    end = x[[b for _, b in pairs]]
    strips = _to_numpy(model.interpolate(start, end, steps=args.steps))
    vis.save_strip(strips, out / "interpolation.png")
    written.append("interpolation.png")
    _say(args, f"  interpolation.png    {len(pairs)} interpolations in {args.steps} steps "
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
    (out / "metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written.append("metrics.json")
    _say(args, f"  metrics.json         the metrics above\nWrote {len(written)} files to {out}")
    return 0


# --------------------------------------------------------------------------- evaluate / push


def cmd_evaluate(args):
    from keraszoo.weights import loader

    kind, _, _ = loader.parse_spec(args.name, args.revision)
    if args.record and kind != "name":
        raise UsageError("--record writes the metrics into the manifest; it needs a manifest name as NAME.")
    data_path = Path(args.data).expanduser()
    local_data = _is_local_data(args.data)
    if local_data:
        _check_inputs_exist([data_path], "--data")
    model = _load_model(args)
    from keraszoo.evaluation import evaluate, format_table

    if local_data:
        args.input, args.key = str(data_path), args.key
        x, _ = _read_encode_input(args, model)
        data = (x, None)
    else:
        data = args.data
    kwargs = {}
    if args.binarize != "none":
        kwargs["binarize"] = args.binarize
    if args.max_train_examples is not None:
        kwargs["max_train_examples"] = args.max_train_examples
    # verbose: keraszoo.evaluate reports its progress (IWAE bounds take minutes) and prints the table.
    verbose = not args.quiet and not args.json
    results = evaluate(
        model, data, split=args.split, source=args.data_source, data_dir=args.data_dir,
        num_examples=args.num_examples, batch_size=args.batch_size, iwae_samples=args.iwae_samples,
        seed=args.seed, verbose=verbose, knn=not args.no_knn, probe=not args.no_probe, **kwargs,
    )
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    elif not verbose:
        print(format_table(results))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"model": args.name, "results": results}, indent=2, sort_keys=True) + "\n",
                               encoding="utf-8")
        _say(args, f"Wrote {args.output}")
    if args.record:
        _record_metrics(args, results)
    return 0


def _is_local_data(text):
    """Whether ``--data`` names files (a folder, .npy, .npz) rather than a dataset such as ``mnist``."""
    from keraszoo import data

    if os.sep in text or "/" in text or Path(text).suffix.lower() in (".npy", ".npz", ".png"):
        return True
    try:
        data.dataset_info(text)
    except ValueError:
        return Path(text).expanduser().exists()
    return False


_NOT_METRICS = ("seconds", "num_examples", "iwae_samples")


def _record_metrics(args, results):
    import shlex

    from keraszoo.weights import manifest

    metrics = {k: v for k, v in results.items()
               if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    evaluation = {k: results[k] for k in ("dataset", "split", "num_examples", "binarize", "iwae_samples", "seconds")
                  if k in results}
    evaluation["command"] = shlex.join([PROG, *args.argv])
    manifest.set_metrics(args.name, metrics, evaluation=evaluation)
    _say(args, f"Recorded {len(metrics)} metrics for {args.name} in {manifest.manifest_path()}")


def cmd_push(args):
    from keraszoo.weights.publish import push_to_hub

    if not Path(args.directory).expanduser().is_dir():
        raise CommandError(f"{args.directory!r} is not a directory; expected a folder written by "
                           "keraszoo.save_pretrained() (or 'keraszoo train --out').")
    _say(args, f"Pushing {args.directory} to {args.repo_id} ...")
    commit = push_to_hub(str(Path(args.directory).expanduser()), args.repo_id, token=args.token,
                         private=args.private, commit_message=args.message, revision=args.branch)
    if args.quiet:
        print(commit)
    else:
        print(f"Pushed {args.directory} to {args.repo_id} at commit {commit}\n"
              f"Load it with: keraszoo.load('hf://{args.repo_id}@{commit}')")
    return 0


# --------------------------------------------------------------------------- train / finetune

_FORWARD_EXAMPLES = {
    "train": _examples(
        "keraszoo train --model vae --dataset mnist --epochs 30 --out runs/vae_mnist",
        "keraszoo train --model conv_ae --dataset cifar10 --data-source npz --data-dir /data --out runs/ae",
        "keraszoo train --recipe vae_mnist --out runs/vae_mnist_again    # rerun a zoo model's recipe",
    ),
    "finetune": _examples(
        "keraszoo finetune vae_mnist --data my_digits/ --epochs 5 --out runs/my_vae",
        "keraszoo finetune runs/vae_mnist --data images.npy --freeze-encoder --lr 1e-4 --out runs/ft",
    ),
}


def _import_training(command):
    """``training.train`` / ``training.finetune`` of the source checkout keraszoo runs from."""
    import importlib

    root = Path(__file__).resolve().parent.parent
    script = root / "training" / f"{command}.py"
    if script.is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"training.{command}")
    except ModuleNotFoundError as err:
        if err.name not in ("training", f"training.{command}"):
            raise
    raise CommandError(
        f"'keraszoo {command}' runs training/{command}.py from a keraszoo source checkout, and none was found "
        f"next to this installation ({root}). Clone the keraszoo repository and run it there "
        f"(pip install -e .), or use python training/{command}.py directly."
    )


def _forward(command, rest, quiet):
    module = _import_training(command)
    if any(arg in ("-h", "--help") for arg in rest):
        parser = module.build_parser()
        parser.prog = f"{PROG} {command}"
        parser.epilog = (_FORWARD_EXAMPLES[command] + f"\n\nThe options are those of training/{command}.py, "
                         "to which this command forwards its arguments.")
        if not issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
            parser.formatter_class = type("Formatter", (argparse.RawDescriptionHelpFormatter,
                                                        parser.formatter_class), {})
        parser.print_help()
        return 0
    rest = list(rest)
    if quiet and not any(arg == "--verbose" or arg.startswith("--verbose=") for arg in rest):
        rest += ["--verbose", "0"]
    return int(module.main(rest) or 0)


# --------------------------------------------------------------------------- parser


def _common_parent(top):
    """--debug / --quiet, accepted before and after the command."""
    parent = argparse.ArgumentParser(add_help=False)
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parent.add_argument("--debug", action="store_true", default=default(False),
                        help="show Python tracebacks and TensorFlow logs")
    parent.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="print only results and errors (no progress)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``keraszoo`` argument parser (``train``/``finetune`` are forwarded before parsing)."""
    from keraszoo.version import __version__

    common = _common_parent(top=False)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="keraszoo: pretrained Keras autoencoders from the command line.",
        epilog=_examples(
            "keraszoo demo                        # try the pretrained vae_mnist on bundled digits",
            "keraszoo list",
            "keraszoo reconstruct vae_mnist digit.png -o recon.png",
            "keraszoo <command> --help            # the options of one command",
        ),
        formatter_class=_Formatter,
        parents=[_common_parent(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"keraszoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help, examples, **kwargs):
        p = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                           epilog=examples, formatter_class=_Formatter, parents=[common], **kwargs)
        return p

    p = add("list", "list the published pretrained models (reads the manifest; no TensorFlow)",
            _examples("keraszoo list", "keraszoo list 'vae*'", "keraszoo list --json"))
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'vae*' or '*_mnist'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = add("info", "describe a pretrained model: architecture, data, recipe, metrics",
            _examples("keraszoo info vae_mnist", "keraszoo info vae_mnist --json", "keraszoo info runs/my_vae"))
    p.add_argument("name", metavar="NAME", help="manifest name, or a save_pretrained folder")
    p.add_argument("--json", action="store_true", help="print the full entry as JSON")
    p.set_defaults(func=cmd_info)

    p = add("demo", "run a pretrained model on the bundled MNIST digits and write pictures",
            _examples("keraszoo demo", "keraszoo demo --model runs/my_vae --out demo/",
                      "keraszoo demo --seed 1 --samples 100"))
    p.add_argument("--model", default=DEMO_MODEL,
                   help=f"manifest name, hf://org/repo[@rev] or a save_pretrained folder (default: {DEMO_MODEL})")
    p.add_argument("--out", default="keraszoo-demo", help="output folder (default: ./keraszoo-demo/)")
    p.add_argument("--num", type=positive_int, default=16, help="digits in reconstructions.png (default: 16)")
    p.add_argument("--samples", type=positive_int, default=64, help="images in samples.png (default: 64)")
    p.add_argument("--steps", type=_steps, default=10, help="steps per interpolation (default: 10)")
    p.add_argument("--rows", type=positive_int, default=4, help="interpolations in interpolation.png (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior samples (default: 0)")
    _add_model_options(p, name=False)
    p.set_defaults(func=cmd_demo)

    p = add("reconstruct", "reconstruct images and draw them under the originals",
            _examples("keraszoo reconstruct vae_mnist digit1.png digit2.png -o recon.png",
                      "keraszoo reconstruct runs/my_vae my_digits/ -o recon.png --cols 8",
                      "keraszoo reconstruct vae_mnist photo.png --resize --color-mode grayscale -o recon.png"))
    _add_model_options(p)
    p.add_argument("images", metavar="IMAGES", nargs="+", help="PNG files or folders of them")
    p.add_argument("-o", "--output", type=_output(".png", ".npy"), required=True,
                   help="grid .png (originals above reconstructions), or .npy for the array")
    p.add_argument("--cols", type=positive_int, default=10, help="images per row (default: 10)")
    _add_image_options(p)
    p.set_defaults(func=cmd_reconstruct)

    p = add("encode", "encode images to latent codes",
            _examples("keraszoo encode vae_mnist my_digits/ -o codes.npy",
                      "keraszoo encode vae_mnist images.npz --key x_test -o codes.npz   # .npz keeps file names"))
    _add_model_options(p)
    p.add_argument("input", metavar="INPUT", help="image folder, image file, .npy or .npz of images "
                                                  "(uint8 0..255 or floats in [0, 1])")
    p.add_argument("-o", "--output", type=_output(".npy", ".npz"), required=True,
                   help="codes (N, latent_dim) as .npy, or .npz with 'codes' (and 'files' for images)")
    p.add_argument("--key", help="array to read from an .npz INPUT (default: x_train, x, images or its only array)")
    _add_image_options(p)
    p.set_defaults(func=cmd_encode)

    p = add("decode", "decode latent codes to images",
            _examples("keraszoo decode vae_mnist codes.npy -o decoded.png",
                      "keraszoo decode vae_mnist codes.npz -o decoded.npy"))
    _add_model_options(p)
    p.add_argument("codes", metavar="CODES", help=".npy of shape (N, latent_dim) or .npz with 'codes'")
    p.add_argument("-o", "--output", type=_output(".png", ".npy"), required=True, help="grid .png or .npy array")
    p.add_argument("--key", help="array to read from an .npz (default: codes, z or its only array)")
    p.add_argument("--cols", type=positive_int, default=10, help="images per row (default: 10)")
    p.set_defaults(func=cmd_decode)

    p = add("sample", "draw images from a generative model's prior (vae, hvae, aae)",
            _examples("keraszoo sample vae_mnist -n 64 -o samples.png --seed 0",
                      "keraszoo sample hf://org/my-vae -n 1000 -o samples.npy"))
    _add_model_options(p)
    p.add_argument("-n", "--num", type=positive_int, default=64, help="number of samples (default: 64)")
    p.add_argument("-o", "--output", type=_output(".png", ".npy"), required=True, help="grid .png or .npy array")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    p.add_argument("--cols", type=positive_int, default=None, help="images per row (default: a square grid)")
    p.set_defaults(func=cmd_sample)

    p = add("interpolate", "decode the straight line between the codes of two images",
            _examples("keraszoo interpolate vae_mnist three.png eight.png --steps 10 -o strip.png"))
    _add_model_options(p)
    p.add_argument("start", metavar="A", help="first image (PNG)")
    p.add_argument("end", metavar="B", help="last image (PNG)")
    p.add_argument("--steps", type=_steps, default=10, help="images in the strip, end points included (default: 10)")
    p.add_argument("-o", "--output", type=_output(".png", ".npy"), required=True, help="strip .png or .npy array")
    _add_image_options(p)
    p.set_defaults(func=cmd_interpolate)

    p = add("evaluate", "measure a model on a dataset (keraszoo.evaluate)",
            _examples("keraszoo evaluate vae_mnist --data mnist --data-dir /data",
                      "keraszoo evaluate runs/my_vae --num-examples 1000 --iwae-samples 100 --json",
                      "keraszoo evaluate runs/my_vae --data my_images/ -o results.json",
                      "keraszoo evaluate vae_mnist --iwae-samples 5000 --binarize static --record"))
    _add_model_options(p)
    p.add_argument("--data", default="mnist",
                   help="dataset name (mnist, fashion_mnist, cifar10) or an image folder, .npy or .npz "
                        "(default: mnist)")
    p.add_argument("--split", default="test", help="split of a named dataset, e.g. test or test[:1000] (default: test)")
    p.add_argument("--data-source", choices=("auto", "npz", "tfds"), default="auto",
                   help="read a named dataset from .npz archives or tensorflow_datasets (default: auto)")
    p.add_argument("--data-dir", help="folder of the .npz archives (default: $KERASZOO_DATA_DIR)")
    p.add_argument("-n", "--num-examples", type=positive_int, default=None, help="evaluate the first N examples")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE, help=f"default: {BATCH_SIZE}")
    p.add_argument("--iwae-samples", type=positive_int, default=None,
                   help="importance samples for the IWAE bound (VAE family); published numbers use 5000")
    p.add_argument("--binarize", choices=("none", "static"), default="none",
                   help="fixed-seed Bernoulli binarization (the convention for MNIST likelihoods)")
    p.add_argument("--max-train-examples", type=positive_int, default=None,
                   help="cap on the train codes used by the k-NN and linear-probe metrics")
    p.add_argument("--no-knn", action="store_true", help="skip the k-NN accuracy of the codes")
    p.add_argument("--no-probe", action="store_true", help="skip the linear-probe accuracy of the codes")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation's random draws (default: 0)")
    p.add_argument("--key", help="array to read from an .npz --data")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("-o", "--output", type=_output(".json"), default=None, help="also write the results as JSON")
    p.add_argument("--record", action="store_true",
                   help="write the metrics into keraszoo's manifest (maintainers; NAME must be a manifest name)")
    p.set_defaults(func=cmd_evaluate, resize=False, color_mode=None)

    for name in FORWARDED:  # dispatched before parsing; listed here for --help
        p = add(name, {"train": "train a model (training/train.py; 'keraszoo train --help' for its options)",
                       "finetune": "fine-tune a pretrained model on your images (training/finetune.py)"}[name],
                _FORWARD_EXAMPLES[name], add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)

    p = add("push", "upload a save_pretrained folder to the Hugging Face Hub",
            _examples("keraszoo push runs/vae_mnist my-org/vae-mnist",
                      "keraszoo push runs/vae_mnist my-org/vae-mnist --private --message 'epoch 50'"))
    p.add_argument("directory", metavar="DIR", help="folder written by keraszoo.save_pretrained / keraszoo train")
    p.add_argument("repo_id", metavar="REPO_ID", help="Hub repository, org/name (created if needed)")
    p.add_argument("--token", default=None, help="Hub token (default: the logged-in token or $HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload keraszoo model", help="commit message")
    p.add_argument("--branch", default=None, help="branch to commit to (default: main)")
    p.set_defaults(func=cmd_push)
    return parser


# --------------------------------------------------------------------------- main


_GLOBAL_FLAGS = ("--debug", "-q", "--quiet")


def _split_global(argv):
    """Leading --debug / --quiet flags, and the rest.

    For the forwarded commands (train, finetune) the flags are also taken out of
    the forwarded arguments (up to a ``--``): the training scripts do not have them.
    """
    flags = {"debug": False, "quiet": False}
    index = 0
    while index < len(argv) and argv[index] in _GLOBAL_FLAGS:
        flags["debug" if argv[index] == "--debug" else "quiet"] = True
        index += 1
    rest = argv[index:]
    if rest and rest[0] in FORWARDED:
        end = rest.index("--") if "--" in rest else len(rest)
        for arg in rest[1:end]:
            if arg in _GLOBAL_FLAGS:
                flags["debug" if arg == "--debug" else "quiet"] = True
        rest = [rest[0]] + [a for a in rest[1:end] if a not in _GLOBAL_FLAGS] + rest[end:]
    return flags, rest


def _quiet_tensorflow(debug):
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags, rest = _split_global(argv)
    _quiet_tensorflow(flags["debug"] or "--debug" in argv)
    if rest and rest[0] in FORWARDED:
        try:
            return _forward(rest[0], rest[1:], flags["quiet"])
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - the command line reports every error on one line
            return _report(err, flags["debug"])

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help / --version (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the command line reports every error on one line
        return _report(err, args.debug)


def _report(err, debug):
    if debug:
        import traceback

        traceback.print_exc()
    print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
