"""``keraszoo evaluate``: the zoo's metrics of a model (keraszoo.evaluate), optionally recorded in the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import BATCH_SIZE
from keraszoo.cli._shared import PROG
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import add_model_options
from keraszoo.cli._shared import check_inputs_exist
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import load_model
from keraszoo.cli._shared import output
from keraszoo.cli._shared import print_json
from keraszoo.cli._shared import read_image_input
from keraszoo.cli._shared import say
from keraszoo.utils import atomic_write_text

_NOT_METRICS = ("seconds", "num_examples", "iwae_samples")


def register(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "evaluate", "measure a model on a dataset (keraszoo.evaluate)",
                    examples("keraszoo evaluate vae_mnist --data mnist --data-dir /data",
                             "keraszoo evaluate runs/my_vae --num-examples 1000 --iwae-samples 100 --json",
                             "keraszoo evaluate runs/my_vae --data my_images/ -o results.json",
                             "keraszoo evaluate vae_mnist --iwae-samples 5000 --binarize static --record"))
    add_model_options(p)
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
    p.add_argument("-o", "--output", type=output(".json"), default=None, help="also write the results as JSON")
    p.add_argument("--record", action="store_true",
                   help="write the metrics into keraszoo's manifest (maintainers; NAME must be a manifest name)")
    p.set_defaults(func=cmd_evaluate, resize=False, color_mode=None)


def cmd_evaluate(args):
    from keraszoo.weights import loader

    kind, _, _ = loader.parse_spec(args.name, args.revision)
    if args.record and kind != "name":
        raise UsageError("--record writes the metrics into the manifest; it needs a manifest name as NAME.")
    data_path = Path(args.data).expanduser()
    local_data = _is_local_data(args.data)
    if local_data:
        check_inputs_exist([data_path], "--data")
    model = load_model(args)
    from keraszoo.evaluation import evaluate
    from keraszoo.evaluation import format_table

    data = (read_image_input(args, model, data_path)[0], None) if local_data else args.data
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
        print_json(results)
    elif not verbose:
        print(format_table(results))
    if args.output is not None:
        atomic_write_text(args.output, json.dumps({"model": args.name, "results": results}, indent=2,
                                                  sort_keys=True) + "\n")
        say(args, f"Wrote {args.output}")
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


def _record_metrics(args, results):
    import shlex

    from keraszoo.weights import manifest

    metrics = {k: v for k, v in results.items()
               if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    evaluation = {k: results[k] for k in ("dataset", "split", "num_examples", "binarize", "iwae_samples", "seconds")
                  if k in results}
    evaluation["command"] = shlex.join([PROG, *args.argv])
    manifest.set_metrics(args.name, metrics, evaluation=evaluation)
    say(args, f"Recorded {len(metrics)} metrics for {args.name} in {manifest.manifest_path()}")
