"""Carry an unfinished sweep to another machine by its results lines (no weights), and go on there.

    python training/carry_sweep.py save runs/sweeps/contractive-mnist training/sweep_state/contractive-mnist
    python training/carry_sweep.py restore training/sweep_state/contractive-mnist runs/sweeps/contractive-mnist
    keraszoo experiment contractive --workers 2 --out runs/sweeps/contractive-mnist   # trains only the rest

``save`` writes the sweep's plan (``study.json``), the lines of its finished runs (``results.jsonl``), the first
records of retrained runs (``superseded.jsonl``) and its recheck into a small folder that travels (kilobytes: commit
it, copy it to a bucket). It can run while the sweep does. ``restore`` puts them into the sweep folder on the new
machine and lists the runs in ``carried.json``: they count as finished and are not trained again. Their folders
(the weights) stay behind: the report checks them from their training logs and draws its image figures from
another seed (see ``keraszoo.experiments.carry``). Once the study is published, the state folder can go: the
report's folder holds the same lines.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    save = sub.add_parser("save", help="write the sweep's plan and finished lines into a state folder")
    save.add_argument("sweep", type=pathlib.Path, help="the sweep folder (keraszoo experiment --out)")
    save.add_argument("state", type=pathlib.Path, help="the state folder to write (created)")
    restore = sub.add_parser("restore", help="put a saved state into a sweep folder; its runs count as finished")
    restore.add_argument("state", type=pathlib.Path, help="a folder written by `save`")
    restore.add_argument("sweep", type=pathlib.Path, help="the sweep folder (missing, empty or the same sweep's)")
    args = parser.parse_args(argv)

    from keraszoo.experiments.carry import restore_sweep
    from keraszoo.experiments.carry import save_sweep
    from keraszoo.experiments.study import StudyError
    from keraszoo.output_folder import OutputFolderError

    try:
        if args.command == "save":
            done = save_sweep(args.sweep, args.state)
            print(f"{done['dest']}: study {done['study']!r} at budget {done['budget']!r}, {done['runs']} of "
                  f"{done['planned']} planned runs finished" + (f", {done['superseded']} superseded records"
                                                                if done["superseded"] else "") + ".")
        else:
            done = restore_sweep(args.state, args.sweep)
            print(f"{done['sweep']}: study {done['study']!r} at budget {done['budget']!r}: {done['carried']} runs "
                  f"carried here without their folders, {done['already_here']} already here"
                  + (f", {done['superseded']} superseded records" if done["superseded"] else "")
                  + ". `keraszoo experiment` trains the rest.")
    except (StudyError, OutputFolderError, ValueError) as err:
        print(f"carry_sweep.py {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
