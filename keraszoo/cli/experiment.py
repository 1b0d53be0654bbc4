"""``keraszoo experiment``: run a study (keraszoo.experiments.run_study), one results line per run."""

from __future__ import annotations

import argparse

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
                 "keraszoo experiment variants_cifar10 --out runs/variants_cifar10 --workers 2",
                 "keraszoo experiment my_study.json --budget smoke --out runs/mine   # your own spec file",
                 "keraszoo experiment latent --out runs/latent      # again: skips the finished runs",
                 "keraszoo experiment latent --out runs/latent --retrain 0d565fe4 --reason 'resume bug fixed in 76f3de9'",
                 "keraszoo experiment beta --engine ray --address auto --gpus-per-run 0.5 --out /shared/beta",
                 "keraszoo experiment beta --shard $SLURM_ARRAY_TASK_ID/4 --out /shared/beta   # sbatch --array=0-3",
                 "keraszoo experiment beta --out runs/beta --state /bucket/beta-state   # goes on from it on a new machine"))
    p.add_argument("study", metavar="STUDY",
                   help="a built-in study (latent, depth, beta, sparsity, contractive, noise, variants, latent_cifar10, "
                        "beta_cifar10, noise_cifar10, variants_cifar10) or the path of a JSON spec file")
    p.add_argument("--dataset", choices=_DATASETS, default=None, help="default: the study's first dataset")
    p.add_argument("--budget", choices=_BUDGETS, default="default",
                   help="smoke: minutes on a laptop (tests); default: to convergence (5,000 validation images, early "
                        "stopping, 3 seeds per setting, the whole test split: hours per study on 2 CPU cores); "
                        "full: longer, 5 seeds, for a GPU (default: default)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="runs at a time, each in its own process with cores/N threads (default: 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where the runs execute: local (this machine, --workers) or ray (each run a Ray task; "
                        'pip install "keraszoo[ray]") (default: local)')
    p.add_argument("--address", metavar="ADDR",
                   help="--engine ray: the Ray cluster's address (auto, HOST:6379, ray://HOST:10001); "
                        "default: a Ray instance started for the sweep")
    p.add_argument("--cpus-per-run", type=_positive_float, metavar="C", help="--engine ray: CPUs per run (default: 1)")
    p.add_argument("--gpus-per-run", type=_non_negative_float, metavar="G",
                   help="--engine ray: GPUs per run, a fraction shares one (default: 0)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only the I-th of N disjoint parts of the plan (0 <= I < N), beside the other shards, "
                        "into the same --out (a Slurm array: --shard $SLURM_ARRAY_TASK_ID/N); then run the command "
                        "once more without --shard to gather the records and rerun what failed")
    p.add_argument("--data-dir", help="folder of the .npz archives (default: $KERASZOO_DATA_DIR)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the sweep folder: results.jsonl, study.json, runs/<run_id>/ (its parent must exist); "
                        "a folder of another study, budget or spec is refused")
    p.add_argument("--recheck", nargs="?", const="", metavar="RUN_ID",
                   help="instead of running the sweep: train one finished run of --out again (RUN_ID, default the "
                        "first) in a fresh process with the sweep's threads (cores/--workers) and write "
                        "DIR/reproducibility.json: how far the same seed moves between two processes")
    p.add_argument("--retrain", action="append", default=[], metavar="RUN_ID",
                   help="train this finished run again from its seed (a run id, or the 8-digit digest that ends it; "
                        "repeat for more), then go on with the sweep: its first training (record, folder, log) is "
                        "kept in DIR/superseded/, and study.json lists it under 'retrained'")
    p.add_argument("--reason", metavar="TEXT", help="--retrain: why, recorded beside each retrained run")
    p.add_argument("--state", metavar="STATE",
                   help="a folder that outlives this machine (a git checkout, a mounted bucket): the sweep's results "
                        "lines and plan, no weights, saved there after every finished run; a state already there is "
                        "restored into --out first, so the same command on a new machine goes on where the last "
                        "stopped (not with --shard; with --recheck: saved once the recheck is written)")
    p.add_argument("--yes", action="store_true",
                   help="run a grid of more than 500 runs (without it such a sweep is refused, saying how many)")
    p.set_defaults(func=cmd_experiment)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_float(text):
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def cmd_experiment(args):
    from keraszoo.experiments import StudyError
    from keraszoo.experiments import run_study

    if args.recheck is not None:
        if args.retrain:
            raise UsageError("--recheck and --retrain do different things; give one of them.")
        return _recheck(args)
    if args.reason is not None and not args.retrain:
        raise UsageError("--reason goes with --retrain RUN_ID (it says why the run is trained again).")
    try:
        result = run_study(args.study, dataset=args.dataset, budget=args.budget, out=args.out,
                           workers=args.workers, data_dir=args.data_dir, quiet=args.quiet, yes=args.yes,
                           engine=args.engine, address=args.address, cpus_per_run=args.cpus_per_run,
                           gpus_per_run=args.gpus_per_run, shard=args.shard, retrain=args.retrain,
                           reason=args.reason, state=args.state)
    except StudyError as err:
        raise UsageError(str(err)) from None
    record = result.out / ("study.json" if result.shard is None else "shards")
    records = result.results_path if result.shard is None else result.out / "results.d"
    if result.failed:
        raise CommandError(f"{len(result.failed)} of {len(result.planned)} runs failed "
                           f"({', '.join(f['run_id'] for f in result.failed)}); see {record} and "
                           f"{result.out / 'logs'}. The other runs are in {records}.")
    if result.busy:
        raise CommandError(f"{len(result.busy)} of {len(result.planned)} runs are being trained by another process "
                           f"({', '.join(b['run_id'] for b in result.busy)}); run the command again once it has "
                           f"finished. The other runs are in {records}.")
    return 0


def _recheck(args):
    from keraszoo.experiments import StudyError
    from keraszoo.experiments import recheck
    from keraszoo.experiments.execute import cores

    threads = max(1, cores() // args.workers)
    try:
        record = recheck(args.out, args.recheck or None, threads=threads, data_dir=args.data_dir)
    except StudyError as err:
        raise UsageError(str(err)) from None
    same = "bit-identical" if record["weights_bit_identical"] and record["test_bit_identical"] else (
        f"not bit-identical: weights differ by at most {record['weights_max_abs_diff']:.3g}, test metrics by at most "
        f"{100 * (record['test_max_rel_diff'] or 0):.3g} %")
    print(f"{record['run_id']} trained again in a fresh process ({record['threads']} thread(s), from "
          f"{record['threads_from']}): {same}; "
          f"see {args.out}/reproducibility.json.")
    if args.state is not None:  # the recheck travels with the lines
        from keraszoo.experiments.carry import save_sweep

        try:
            save_sweep(args.out, args.state)
        except StudyError as err:
            raise UsageError(str(err)) from None
    return 0
