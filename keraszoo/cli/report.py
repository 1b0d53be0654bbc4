"""``keraszoo report DIR -o OUT``: the Markdown report of an experiment, ending with its consistency check.

``OUT`` follows keraszoo's rule for output folders (:mod:`keraszoo.output_folder`):
empty or new, or the report of the same ``DIR`` written there before (it is
rewritten), or ``--overwrite``; it is locked while the report is written.
"""

from __future__ import annotations

import sys

from keraszoo.argtypes import positive_int
from keraszoo.cli._shared import PROG
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import say


def register(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "report",
                    "write the Markdown report (figures, tables, consistency check) of an experiment's results",
                    examples("keraszoo experiment beta --dataset mnist --budget default --out runs/beta",
                             "keraszoo report runs/beta -o reports/beta"))
    p.add_argument("results_dir", metavar="DIR", help="the experiment folder (holds results.jsonl)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="report folder: OUT/README.md, OUT/figures/ (empty, new, or an earlier report of DIR)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an OUT that holds other files (they may be replaced)")
    p.add_argument("--data-dir", help="folder of the .npz archives the runs were evaluated on (default: $KERASZOO_DATA_DIR)")
    p.add_argument("--mc-samples", type=positive_int, default=None,
                   help="NumPy draws per image of the stochastic terms in the consistency check (default: 16)")
    p.set_defaults(func=cmd_report)


def cmd_report(args):
    """Exit status 1 when a run fails the consistency check (the report is written either way)."""
    from keraszoo import output_folder
    from keraszoo.experiments import consistency
    from keraszoo.experiments.report import report_key
    from keraszoo.experiments.report import write_report

    command = f"{PROG} report {args.results_dir} -o {args.output}"
    with output_folder.claim(args.output, "report", key=report_key(args.results_dir), overwrite=args.overwrite,
                             flag="-o") as out:  # the report's own claim below is then this one (re-entrant)
        path, checks = write_report(args.results_dir, out, data_dir=args.data_dir, overwrite=args.overwrite,
                                    mc_samples=args.mc_samples or consistency.DEFAULT_MC_SAMPLES, command=command)
    failed = [c for c in checks if not c.ok]
    say(args, f"Wrote {path} ({len(checks)} runs; consistency check: {len(checks) - len(failed)} pass, {len(failed)} fail).")
    for c in failed:
        print(f"{PROG} report: consistency check failed for run {c.run_id} ({c.variant}): {'; '.join(c.problems())}",
              file=sys.stderr)
    return 1 if failed else 0
