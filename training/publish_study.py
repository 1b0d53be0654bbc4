"""Publish a finished study sweep as a committed report: the report, its raw results and the reproducibility check.

    python training/publish_study.py runs/sweeps/depth-mnist reports/depth [--recheck] [--workers 2]

Refuses a sweep whose planned runs are not all finished (a run failed, or the sweep is still running: run
``keraszoo experiment`` again first). Then, in order:

1. with ``--recheck``: ``keraszoo experiment STUDY --out SWEEP --recheck --workers N`` trains the sweep's
   first run again in a fresh process (``SWEEP/reproducibility.json``: how far the same seed moves);
2. ``keraszoo report SWEEP -o REPORT --overwrite`` writes ``REPORT/README.md`` and its figures (with the
   run folders: the image figures too);
3. ``results.jsonl``, ``study.json`` and ``reproducibility.json`` are copied beside the report (no
   weights), so ``keraszoo report REPORT -o OUT`` rebuilds the report's tables, curves and the
   training-log check from the committed lines alone; the records of runs replaced with
   ``keraszoo experiment --retrain`` (``SWEEP/superseded/*/record.json``) go to ``superseded.jsonl``,
   one line each with the reason.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keraszoo.experiments.carry import SUPERSEDED_FILE  # noqa: E402 - the replaced runs' records, a JSON line each
from keraszoo.experiments.carry import superseded_records  # noqa: E402
from keraszoo.experiments.carry import write_json_lines  # noqa: E402

#: What is copied beside the report (whatever of it the sweep has; ``carried.json``: the runs whose lines alone
#: were carried from another machine, ``training/carry_sweep.py``).
RAW_FILES = ("results.jsonl", "study.json", "reproducibility.json", "carried.json")


def unfinished(sweep: pathlib.Path) -> list:
    """The planned runs of every dataset of ``sweep`` that have no finished record (``[]``: complete)."""
    from keraszoo.experiments import ResultsFile

    record = json.loads((sweep / "study.json").read_text())
    done = ResultsFile(sweep).finished()
    return [run_id for entry in record.get("datasets", {}).values() for run_id in entry.get("planned", [])
            if run_id not in done]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=pathlib.Path, help="the sweep folder (keraszoo experiment --out)")
    parser.add_argument("report", type=pathlib.Path, help="the report folder to write (reports/<study>)")
    parser.add_argument("--recheck", action="store_true", help="train the first run again in a fresh process first")
    parser.add_argument("--workers", type=int, default=2, help="the sweep's --workers (the recheck's threads)")
    parser.add_argument("--data-dir", help="the .npz archives (default: $KERASZOO_DATA_DIR)")
    args = parser.parse_args(argv)
    if not (args.sweep / "study.json").is_file():
        parser.error(f"{args.sweep} holds no sweep (no study.json).")
    missing = unfinished(args.sweep)
    if missing:
        print(f"{args.sweep}: {len(missing)} planned runs are not finished ({', '.join(missing[:3])}"
              f"{' ...' if len(missing) > 3 else ''}); run `keraszoo experiment` again first.", file=sys.stderr)
        return 1
    record = json.loads((args.sweep / "study.json").read_text())
    study = record.get("spec_file") or record["study"]  # a user's study reruns from its spec file, as the runner ran it
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    keraszoo = [sys.executable, "-m", "keraszoo"]
    if args.recheck:
        subprocess.run(keraszoo + ["experiment", study, "--out", str(args.sweep), "--recheck", "--workers",
                                   str(args.workers)] + data, check=True)
    report = subprocess.run(keraszoo + ["report", str(args.sweep), "-o", str(args.report), "--overwrite"] + data)
    for name in RAW_FILES:
        if (args.sweep / name).is_file():
            shutil.copyfile(args.sweep / name, args.report / name)
    superseded = superseded_records(args.sweep)
    if superseded:
        write_json_lines(args.report / SUPERSEDED_FILE, superseded)
    print(f"{args.report}: the report, and {', '.join(n for n in RAW_FILES + (SUPERSEDED_FILE,) if (args.report / n).is_file())} "
          f"beside it (report exit status {report.returncode}).")
    return report.returncode


if __name__ == "__main__":
    sys.exit(main())
