"""``keraszoo experiment``: run a study (keraszoo.experiments.run_study), one results line per run."""

from __future__ import annotations

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import UsageError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples

_DATASETS = ("mnist", "cifar10", "fashion_mnist")
_BUDGETS = ("smoke", "default", "full")


def register(subparsers, common_parent):
    p = add_command(
        subparsers, common_parent, "experiment",
        "run a study: a sweep of training runs, each evaluated on the test split (keraszoo.experiments)",
        examples("keraszoo experiment beta --dataset mnist --budget default --out runs/beta",
                 "keraszoo experiment variants --dataset cifar10 --out runs/variants --workers 2",
                 "keraszoo experiment my_study.json --budget smoke --out runs/mine   # your own spec file",
                 "keraszoo experiment latent --out runs/latent      # again: skips the finished runs"))
    p.add_argument("study", metavar="STUDY",
                   help="a built-in study (latent, depth, beta, sparsity, contractive, noise, variants) or the path "
                        "of a JSON spec file")
    p.add_argument("--dataset", choices=_DATASETS, default="mnist", help="default: mnist")
    p.add_argument("--budget", choices=_BUDGETS, default="default",
                   help="smoke: minutes on a laptop (tests); default: up to ~30 min per study on 2 CPU cores; "
                        "full: for a GPU (default: default)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="runs at a time, each in its own process with cores/N threads (default: 1)")
    p.add_argument("--data-dir", help="folder of the .npz archives (default: $KERASZOO_DATA_DIR)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the sweep folder: results.jsonl, study.json, runs/<run_id>/ (its parent must exist); "
                        "a folder of another study, budget or spec is refused")
    p.add_argument("--yes", action="store_true",
                   help="run a grid of more than 500 runs (without it such a sweep is refused, saying how many)")
    p.set_defaults(func=cmd_experiment)


def cmd_experiment(args):
    from keraszoo.experiments import StudyError
    from keraszoo.experiments import run_study

    try:
        result = run_study(args.study, dataset=args.dataset, budget=args.budget, out=args.out,
                           workers=args.workers, data_dir=args.data_dir, quiet=args.quiet, yes=args.yes)
    except StudyError as err:
        raise UsageError(str(err)) from None
    if result.failed:
        raise CommandError(f"{len(result.failed)} of {len(result.planned)} runs failed "
                           f"({', '.join(f['run_id'] for f in result.failed)}); see {result.out / 'study.json'} and "
                           f"{result.out / 'logs'}. The other runs are in {result.results_path}.")
    if result.busy:
        raise CommandError(f"{len(result.busy)} of {len(result.planned)} runs are being trained by another process "
                           f"({', '.join(b['run_id'] for b in result.busy)}); run the command again once it has "
                           f"finished. The other runs are in {result.results_path}.")
    return 0
