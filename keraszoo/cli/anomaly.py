"""``keraszoo anomaly fit`` and ``keraszoo anomaly score``: an anomaly detector for one's own images.

::

    keraszoo anomaly fit --data normal/ --model vae --epochs 20 --fpr 0.05 --out det/
    keraszoo anomaly fit --data normal/ --model vae_mnist --out det/           # a zoo model, calibrated only
    keraszoo anomaly score det/ images/ -o scores.csv

``fit`` trains (a variant or preset: a fresh model of the images' size, on keraszoo's training engine) or
loads (a zoo name, ``hf://org/repo``, a ``save_pretrained`` folder: calibrated only, fine-tuned with
``--epochs``) a model, holds out ``--calibration-fraction`` of the normal images and sets the threshold to the
``1 − fpr`` quantile of their scores (:class:`keraszoo.anomaly.Detector`). ``--out`` becomes the detector's
folder: the model's ``save_pretrained`` files (and its training log), the threshold and calibration in
``metadata.json``, every file recorded with its sha256. It follows keraszoo's output rule: an empty folder, the
same command's own (a resume), or ``--overwrite``.

``score`` reads the images of a folder (or a ``.npy``/``.npz`` array), writes the CSV (one row per file:
``file,score,flag``; sorted by score, most anomalous first; flag 1 = above the threshold) and beside it
``<name>_extremes.png`` (the ten most anomalous images above the ten most normal ones) and
``<name>_histogram.png`` (the scores, the threshold, the calibration images' scores).

Images are read as ``keraszoo finetune --data`` reads them (:func:`keraszoo.training.finetune.load_images`):
unreadable files, mixed sizes and empty folders are refused with the same messages.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_image_options
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import output
from keraszoo.cli._shared import plural
from keraszoo.cli._shared import say

JOB = "anomaly"


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def register(subparsers, common_parent):
    group = add_command(subparsers, common_parent, "anomaly",
                        "anomaly detection on your images: fit a detector, score images",
                        examples("keraszoo anomaly fit --data normal/ --model vae --fpr 0.05 --out det/",
                                 "keraszoo anomaly score det/ images/ -o scores.csv"))
    sub = group.add_subparsers(dest="anomaly_command", metavar="COMMAND", required=True)
    _add_fit(sub, common_parent)
    _add_score(sub, common_parent)


def _add_fit(sub, common_parent):
    p = add_command(sub, common_parent, "fit",
                    "train or load a model on normal images and calibrate its threshold (an anomaly detector)",
                    examples("keraszoo anomaly fit --data normal/ --model vae --epochs 20 --fpr 0.05 --out det/",
                             "keraszoo anomaly fit --data normal/ --model conv_ae --hparam latent_dim=32 --out det/",
                             "keraszoo anomaly fit --data digits.npy --model vae_mnist --method latent --out det/"))
    p.add_argument("--data", required=True, help="the normal images: a folder of PNG/JPEG files, a .npy or a .npz")
    p.add_argument("--model", default="vae",
                   help="a variant or preset to train (vae, conv_ae, ...), a zoo name (keraszoo list), hf://org/repo "
                        "or a save_pretrained folder (default: vae)")
    p.add_argument("--method", default=None,
                   help="the anomaly score: reconstruction, elbo, iwae, latent or prior (default: the model's own)")
    p.add_argument("--fpr", type=_fraction, default=0.05,
                   help="false-positive rate of the threshold on held-out normal images (default: 0.05)")
    p.add_argument("--calibration-fraction", type=_fraction, default=0.2,
                   help="share of the normal images held out to set the threshold (default: 0.2)")
    p.add_argument("--epochs", type=_non_negative_int, default=None,
                   help="training epochs (default: 20 for a variant; none for a trained model, which is only calibrated)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="training batch size (default: 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="training, calibration split and score draws (default: 0)")
    p.add_argument("--hparam", action="append", default=[], metavar="NAME=VALUE",
                   help="a constructor argument of a variant to train (repeatable): latent_dim=16, hidden_dims=[256]")
    p.add_argument("--out", required=True, help="the detector's folder (empty or new)")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that holds something else")
    add_image_options(p)
    p.set_defaults(func=cmd_fit)


def _add_score(sub, common_parent):
    p = add_command(sub, common_parent, "score", "score images with a saved detector: a CSV and two pictures",
                    examples("keraszoo anomaly score det/ images/ -o scores.csv",
                             "keraszoo anomaly score det/ batch.npy -o scores.csv"))
    p.add_argument("detector", metavar="DETECTOR", help="a folder written by keraszoo anomaly fit")
    p.add_argument("input", metavar="IMAGES", help="a folder of images, a .npy or a .npz")
    p.add_argument("-o", "--output", type=output(".csv"), required=True,
                   help="the CSV (file,score,flag, most anomalous first); the pictures are written beside it")
    add_image_options(p)
    p.set_defaults(func=cmd_score)


# --------------------------------------------------------------------------- fit
def _hparams(items) -> dict:
    from keraszoo.training.recipe import parse_hparam

    return dict(parse_hparam(item) for item in items)


def _read(path, image_shape, args, flag):
    """The images at ``path`` read as ``keraszoo finetune --data`` reads them (its errors, prefixed by ``flag``)."""
    from keraszoo.training.finetune import load_images

    try:
        return load_images(path, image_shape, resize=args.resize, color_mode=args.color_mode)
    except ValueError as err:
        raise CommandError(f"{flag}{path}: {err}") from err


def cmd_fit(args):
    import keraszoo
    from keraszoo import output_folder
    from keraszoo.anomaly import Detector
    from keraszoo.anomaly.detector import model_kind
    from keraszoo.models import resolve_preset

    data = Path(args.data).expanduser()
    if not data.exists():
        raise CommandError(f"--data {args.data}: no such file or folder.")
    hparams = _hparams(args.hparam)
    fresh = model_kind(args.model) == "fresh"
    if hparams and not fresh:
        raise UsageError(f"--hparam applies to a variant trained here; {args.model!r} is a trained model.")
    settings = {"model": args.model, "method": args.method, "fpr": args.fpr, "epochs": args.epochs,
                "calibration_fraction": args.calibration_fraction, "batch_size": args.batch_size, "lr": args.lr,
                "seed": args.seed, "hparams": hparams, "data": str(data.resolve()), "resize": bool(args.resize),
                "color_mode": args.color_mode}
    key = output_folder.recipe_key(settings)
    output_folder.check(args.out, JOB, key=key, overwrite=args.overwrite, flag="--out")  # before any slow work
    if fresh:
        model, image_shape = args.model, None
        if resolve_preset(args.model)[0].requires_labels:
            raise UsageError(f"--model {args.model}: a conditional model needs class labels; keraszoo anomaly fit takes "
                             "unlabelled images (use keraszoo.anomaly.Detector(...).fit(x, labels=y) in Python).")
        if args.resize:
            raise UsageError("--resize needs a trained model's input size; a variant trained here takes the images' own.")
    else:
        say(args, f"Loading {args.model} ...")
        model = keraszoo.load(args.model)
        image_shape = model.image_shape
        if model.requires_labels:
            raise UsageError(f"--model {args.model}: a conditional model needs class labels; keraszoo anomaly fit takes "
                             "unlabelled images (use keraszoo.anomaly.Detector(...).fit(x, labels=y) in Python).")
    x = _read(data, image_shape, args, "--data ")  # read (and refused) before the folder is made
    say(args, f"Read {plural(len(x), 'normal image')} of {'x'.join(map(str, x.shape[1:]))} from {args.data}")
    with output_folder.claim(args.out, JOB, key=key, overwrite=args.overwrite, flag="--out") as out:
        detector = Detector(model, method=args.method, fpr=args.fpr, calibration_fraction=args.calibration_fraction,
                            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            model_kwargs=hparams or None, verbose=0 if args.quiet else 2)
        detector._argv = _command_argv(args.argv)  # recorded with the training run (command.txt, metadata)
        detector.fit(x, out=out, source=str(data.resolve()))
        if not fresh:
            detector.training_.source = args.model
        detector.save(out, flag="--out")
    cal = detector.calibration()
    t = detector.training_
    trained = f"trained {t.epochs} epochs on {t.train_images} images" if t.epochs else "not trained"
    say(args, f"Detector: {type(detector.model_).__name__} ({t.source}, {trained}), score {detector.method_!r}")
    say(args, f"  threshold {detector.threshold_:.6g}: {cal['false_positive_rate']:.1%} of the {cal['count']} held-out "
              f"normal images above it (asked: fpr {detector.fpr_:g})")
    say(args, f"Wrote the detector to {args.out} (load it with keraszoo.anomaly.Detector.load)")
    return 0


def _command_argv(argv):
    """``fit``'s own arguments in the full ``keraszoo`` command line (global flags and the command words dropped)."""
    from keraszoo.cli._shared import GLOBAL_FLAGS

    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    return rest[2:] if rest[:2] == ["anomaly", "fit"] else rest


# --------------------------------------------------------------------------- score
def _names(path, count):
    """One name per image of ``path``: the files of a folder, in the order they are read; ``x[i]`` for an array."""
    from keraszoo.data import images

    path = Path(path).expanduser()
    if path.is_dir():
        return [str(f.relative_to(path)) for f in images.list_images(path)]
    return [f"{path.name}[{i}]" for i in range(count)]


def write_scores(path, names, scores, flags):
    """The CSV ``file,score,flag``, most anomalous first, written atomically."""
    import csv
    import io

    import numpy as np

    from keraszoo.utils import atomic_write_text

    order = np.argsort(-np.asarray(scores), kind="stable")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "score", "flag"])
    for i in order:
        writer.writerow([names[i], f"{float(scores[i]):.9g}", int(flags[i])])
    return atomic_write_text(path, buffer.getvalue())


def cmd_score(args):
    from keraszoo.anomaly import Detector
    from keraszoo.anomaly import pictures
    from keraszoo.anomaly.detector import is_detector_folder

    folder = Path(args.detector).expanduser()
    if not folder.is_dir():
        raise CommandError(f"DETECTOR {args.detector}: no such folder (write one with keraszoo anomaly fit --out).")
    if not is_detector_folder(folder):
        raise CommandError(f"DETECTOR {args.detector} is not an anomaly detector's folder (its metadata.json has no "
                           "'anomaly' section): write one with keraszoo anomaly fit --out.")
    if not Path(args.input).expanduser().exists():
        raise CommandError(f"IMAGES {args.input}: no such file or folder.")
    try:
        detector = Detector.load(folder)
    except (ValueError, OSError) as err:
        raise CommandError(f"DETECTOR {args.detector}: {err}") from err
    if detector.model_.requires_labels:
        raise CommandError(f"DETECTOR {args.detector} is conditional (its model needs class labels): score with "
                           "keraszoo.anomaly.Detector in Python (decision_function(x, labels=y)).")
    x = _read(args.input, detector.model_.image_shape, args, "")
    say(args, f"Scoring {plural(len(x), 'image')} with {args.detector} (score {detector.method_!r}) ...")
    scores = detector.decision_function(x)
    flags = (scores > detector.threshold_).astype(int)
    names = _names(args.input, len(x))
    write_scores(args.output, names, scores, flags)
    stem = args.output.with_suffix("")
    extremes = pictures.save_extremes(x, scores, f"{stem}_extremes.png")
    histogram = pictures.save_histogram(scores, detector.threshold_, f"{stem}_histogram.png",
                                        reference=detector.decision_scores_, title=Path(args.input).name or "images")
    print(f"{int(flags.sum())} of {plural(len(x), 'image')} flagged as anomalous (score > {detector.threshold_:.6g}, "
          f"the threshold at fpr {detector.fpr_:g})")
    say(args, f"Wrote {args.output} (most anomalous first), {extremes.name} (top: most anomalous, bottom: most normal) "
              f"and {histogram.name}")
    return 0
