"""Evaluate a trained run and publish it as a zoo entry (bundled, listed in the manifest).

    KERASZOO_DATA_DIR=../shared/data python training/publish_zoo.py vae_mnist runs/vae_mnist \\
        --iwae-samples 5000

1. loads the ``training/train.py`` output folder;
2. measures it with ``keraszoo.evaluate`` on the full test split (the only
   source of published numbers) -- binarized with the fixed seed for the
   likelihood models, as the literature does;
3. draws the model card's pictures (reconstructions of the first test digits,
   samples from the prior);
4. writes the folder with ``keraszoo.save_pretrained`` (metrics, the run's recipe,
   licenses, paper) into a staging folder and registers it with
   ``keraszoo.weights.manifest.add_entry`` (bundled copy; ``hub.revision`` stays
   null until ``keraszoo push`` publishes it and ``keraszoo manifest add`` pins the commit).

The evaluation command is recorded in the entry, so ``keraszoo evaluate NAME``
reruns it.
"""

import argparse
import fcntl
import json
import pathlib
import shlex
import sys
import tempfile

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

MNIST_LICENSE = "CC BY-SA 3.0"
CIFAR_NOTE = ("Trained and evaluated on cifar10_jpeg.npz, a lossy JPEG (quality ~75) re-encode of CIFAR-10: "
              "numbers are not comparable with results on the original CIFAR-10 pixels.")

#: Quality targets of the zoo: name -> [(metric, "<=" or ">=", bound or (other entry, offset))].
#: ``publish_zoo`` checks each against the measured numbers and writes the outcome, met or not,
#: into the card and the manifest; nothing is rounded in anyone's favour.
KNN_FLOOR = ("knn_accuracy", ">=", 0.90)
TARGETS = {
    "vae_mnist": [("iwae_nll_nats", "<=", 90.0)],
    "hvae_mnist": [("iwae_nll_nats", "<=", ("vae_mnist", -1.0))],
    "iwae_mnist": [("iwae_nll_nats", "<=", 86.0)],
    "cvae_mnist": [("conditional_accuracy", ">=", 0.95)],
    "wae_mnist": [("sample_fd", "<=", ("vae_mnist", 0.0))],  # the WAE paper's claim: sharper samples than a VAE
    "vqvae_mnist": [("psnr_db", ">=", ("conv_ae_mnist", 0.0))],
    "vqvae_cifar10": [("psnr_db", ">=", ("conv_ae_cifar10", 0.0))],
    "hvae_cifar10": [("iwae_bits_per_dim", "<=", ("vae_cifar10", 0.0))],  # the second stochastic layer must pay
}
MIN_PUBLISHED_IWAE_SAMPLES = 5000


def evaluation_binarization(model, dataset):
    """Likelihood models of MNIST are measured on the statically binarized test set (the literature's
    convention); everything else on the grey-level images."""
    return "static" if dataset == "mnist" and model.has_likelihood else None


def _is_conditional(name, entries):
    """Whether the manifest entry ``name`` is of a conditional variant (``requires_labels``)."""
    from keraszoo.models import list_variants

    variant = ((entries.get(name) or {}).get("model") or {}).get("variant")
    return variant in list_variants() and list_variants()[variant].requires_labels


def target_notes(name, dataset, numbers, entries, conditional=None):
    """One sentence per quality target of ``name``: the target, the measured value, met or not.

    The k-NN floor is not a target of conditional models (``conditional``; default: from the
    entry's variant): their codes are meant to hold what the label does not.
    """
    targets = list(TARGETS.get(name, []))
    conditional = _is_conditional(name, entries) if conditional is None else conditional
    if dataset == "mnist" and not conditional:
        targets.append(KNN_FLOOR)
    notes = []
    for metric, op, bound in targets:
        if metric not in numbers:
            continue
        reference = ""
        if isinstance(bound, tuple):
            other, offset = bound
            other_value = ((entries.get(other) or {}).get("metrics") or {}).get(metric)
            if other_value is None:
                notes.append(f"Target {metric} {op} {other}'s {offset:+g} could not be checked: "
                             f"{other} has no {metric} in the manifest.")
                continue
            reference = f" ({other}: {other_value:.4f} {offset:+g})"
            bound = other_value + offset
        value = numbers[metric]
        met = value <= bound if op == "<=" else value >= bound
        verdict = "met" if met else "NOT met"
        notes.append(f"Quality target {metric} {op} {bound:.4f}{reference}: measured {value:.4f}, {verdict}.")
    return notes


def evaluation_notes(dataset, binarize, iwae):
    notes = []
    if dataset == "cifar10":
        notes.append(CIFAR_NOTE)
    if binarize == "static":
        notes.append("All metrics are measured on the statically binarized MNIST test set (every pixel drawn once "
                     "from Bernoulli(intensity) with a fixed seed, as in the IWAE literature), so the "
                     "reconstruction numbers are not comparable with those of the grey-level models.")
    if iwae and iwae < MIN_PUBLISHED_IWAE_SAMPLES:
        notes.append(f"The importance-weighted bound uses k={iwae} samples, fewer than the k={MIN_PUBLISHED_IWAE_SAMPLES} of the MNIST "
                     f"results: it is a looser (larger) bound on the negative log-likelihood.")
    return notes


def card_indices(dataset, labels, count=16):
    """Which test images the card shows: MNIST's first ones (its canonical order mixes the digits);
    for CIFAR-10 the first ones of the split taken class after class, so that every class is shown
    whatever the archive's order."""
    import numpy as np

    labels = np.asarray(labels).reshape(-1)
    count = min(count, len(labels))
    if dataset != "cifar10":
        return np.arange(count)
    queues = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen = []
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return np.sort(np.asarray(chosen, int))


def evaluation_command(name, dataset, binarize, iwae_samples):
    parts = ["keraszoo", "evaluate", name, "--data", dataset]
    if binarize:
        parts += ["--binarize", binarize]
    if iwae_samples:
        parts += ["--iwae-samples", str(iwae_samples)]
    return " ".join(parts)


def reused_metrics(name, model):
    """The manifest's metrics of ``name``, if ``model`` has exactly the weights of its bundle."""
    import keras

    import keraszoo
    from keraszoo.weights import manifest

    entry = manifest.get_entry(name)
    if not entry.get("metrics") or not entry.get("evaluation"):
        raise SystemExit(f"{name} has no measured metrics in the manifest: evaluate it (drop --metrics-from-manifest).")
    published = keraszoo.load(name)
    same = len(published.weights) == len(model.weights) and all(
        a.shape == b.shape and (keras.ops.convert_to_numpy(a) == keras.ops.convert_to_numpy(b)).all()
        for a, b in zip(published.weights, model.weights))
    if not same:
        raise SystemExit(f"The run's weights differ from the published {name}: its metrics do not describe them. "
                         f"Evaluate the run (drop --metrics-from-manifest).")
    return dict(entry["metrics"]), dict(entry["evaluation"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the zoo name, <variant>_<dataset>[_<tag>]")
    parser.add_argument("run_dir", help="output folder of training/train.py")
    parser.add_argument("--iwae-samples", type=int, default=5000, help="VAE family only (default 5000)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--num-examples", type=int, default=None, help="quick runs only; publish the full split")
    parser.add_argument("--staging", default=None, help="folder to write (default: a temporary one)")
    parser.add_argument("--no-bundle", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--metrics-from-manifest", action="store_true",
                        help="re-publish an entry (new card, notes) without measuring again: reuse the manifest's "
                             "metrics, allowed only when run_dir holds exactly the weights they were measured on")
    parser.add_argument("--note", action="append", default=[],
                        help="an extra sentence for the card and the manifest (repeatable)")
    args = parser.parse_args(argv)

    import numpy as np

    import keraszoo
    from keraszoo import visualization
    from keraszoo.weights import manifest

    model = keraszoo.load(args.run_dir)
    run_meta = json.loads((pathlib.Path(args.run_dir) / "metadata.json").read_text())
    dataset = (run_meta.get("recipe") or {}).get("dataset") or (run_meta.get("dataset") or {}).get("name")
    binarize = evaluation_binarization(model, dataset)
    paper = model.paper().as_dict()
    if args.metrics_from_manifest:
        numbers, evaluation = reused_metrics(args.name, model)
        iwae = evaluation.get("iwae_samples")
    else:
        iwae = args.iwae_samples if model.has_likelihood else None
        metrics = keraszoo.evaluate(model, dataset, source="npz", data_dir=args.data_dir, binarize=binarize,
                                    iwae_samples=iwae, num_examples=args.num_examples, verbose=True)
        evaluation = {
            "command": evaluation_command(args.name, dataset, binarize, iwae),
            "dataset": dataset, "split": "test", "binarize": binarize or "none",
            "num_examples": metrics["num_examples"], "iwae_samples": iwae, "seconds": metrics["seconds"],
        }
        numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("num_examples", "iwae_samples", "seconds")}
    conditional = model.requires_labels  # its calls take the images' labels
    notes = (evaluation_notes(dataset, binarize, iwae)
             + target_notes(args.name, dataset, numbers, manifest.read_manifest()["models"], conditional)
             + list(args.note))
    for note in notes:
        print("note:", note)

    staging = pathlib.Path(args.staging or tempfile.mkdtemp(prefix=f"{args.name}-"))
    staging.mkdir(parents=True, exist_ok=True)
    from keraszoo import data as data_module

    x_test, y_test = data_module.load_arrays(dataset, "test", source="npz", data_dir=args.data_dir)
    shown = card_indices(dataset, y_test)
    x_show, y_show = np.asarray(x_test[shown], dtype="float32"), np.asarray(y_test)[shown]
    recon = np.asarray(model.reconstruct(x_show, **model.label_kwargs(y_show)))
    visualization.save_comparison(x_show, recon, staging / "reconstructions.png", ncols=16)
    ends = {"labels": y_show[:4], "end_labels": y_show[4:8]} if conditional else {}
    strips = np.asarray(model.interpolate(x_show[:4], x_show[4:8], steps=10, **ends))  # (4, 10, H, W, C)
    visualization.save_grid(strips.reshape((-1,) + strips.shape[2:]), staging / "interpolations.png", ncols=10)
    if model.is_generative and not conditional:
        visualization.save_grid(np.asarray(model.sample(64, seed=0)), staging / "samples.png", ncols=16)
    if model.is_generative and not conditional and model.latent_dim == 2 and model.gaussian_prior:
        visualization.save_grid(visualization.latent_manifold(model, n=20), staging / "latent_manifold.png", ncols=20)
    for file_name, (images, columns) in model.card_pictures().items():  # a variant's own pictures
        visualization.save_grid(np.asarray(images), staging / file_name, ncols=columns)
    recipe = dict(run_meta.get("recipe") or {})
    data_license = MNIST_LICENSE if dataset == "mnist" else "CIFAR-10 (Krizhevsky, 2009); no explicit license"
    keraszoo.save_pretrained(model, staging, metrics=numbers, recipe=recipe, dataset=dataset,
                             license="MIT", data_license=data_license, paper=paper,
                             repo_id=f"keraszoo/{args.name}", keras_archive=False, zoo_name=args.name,
                             notes=notes)
    description = " ".join(notes) or None
    # Several publish runs may finish at once: serialize the manifest's read-modify-write.
    lock = open(manifest.manifest_path().parent / ".weights_manifest.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    manifest.add_entry(args.name, staging, repo_id=f"keraszoo/{args.name}", revision=None, dataset=dataset,
                       license={"weights": "MIT", "data": data_license}, paper=paper,
                       binarization=binarize or "none", bundle=not args.no_bundle, description=description,
                       overwrite=args.overwrite)
    manifest.set_metrics(args.name, numbers, evaluation=evaluation)
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    print(f"published {args.name}: {json.dumps(numbers, indent=1)}")
    print("evaluation:", shlex.quote(evaluation["command"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
