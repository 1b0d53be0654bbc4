"""Command line for the weights manifest: ``python -m keraszoo.weights <command>``.

Commands::

    list                      names in the manifest
    info NAME                 one entry, as JSON
    check                     validate the manifest and the bundled weights (size limits, digests)
    add NAME DIR ...          register a save_pretrained folder (digests computed, never typed)
    metrics NAME FILE.json    record measured metrics (written by the evaluation command)
    push DIR REPO_ID          upload a save_pretrained folder; prints the commit id to pin

Typical publication of a trained model::

    python -m keraszoo.weights push runs/vae_mnist keraszoo/vae-mnist        # -> <commit>
    python -m keraszoo.weights add vae_mnist runs/vae_mnist \\
        --repo-id keraszoo/vae-mnist --revision <commit> --dataset mnist \\
        --weights-license MIT --data-license "CC BY-SA 3.0" \\
        --paper-title "Auto-Encoding Variational Bayes" --paper-url https://arxiv.org/abs/1312.6114 --bundle

``list``, ``info``, ``check``, ``add`` and ``metrics`` do not import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys

from keraszoo.weights import manifest as mf


def _parser():
    parser = argparse.ArgumentParser(prog="python -m keraszoo.weights", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", help="manifest file (default: the packaged weights_manifest.json)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="names in the manifest")
    info = sub.add_parser("info", help="print one entry as JSON")
    info.add_argument("name")
    sub.add_parser("check", help="validate the manifest and the bundled weights")

    add = sub.add_parser("add", help="register a save_pretrained folder")
    add.add_argument("name")
    add.add_argument("directory")
    add.add_argument("--repo-id", required=True)
    add.add_argument("--revision", required=True, help="the commit id printed by 'push' (40 hex digits)")
    add.add_argument("--dataset", required=True)
    add.add_argument("--weights-license", required=True)
    add.add_argument("--data-license", required=True)
    add.add_argument("--paper-title", required=True)
    add.add_argument("--paper-url", required=True)
    add.add_argument("--binarization", default="none", choices=mf.BINARIZATIONS)
    add.add_argument("--description")
    add.add_argument("--bundle", action="store_true", help="ship a copy inside the package")
    add.add_argument("--overwrite", action="store_true")

    metrics = sub.add_parser("metrics", help="record measured metrics from a JSON file")
    metrics.add_argument("name")
    metrics.add_argument("file", help='JSON: {"metrics": {...}, "evaluation": {...}} or just the metrics')

    push = sub.add_parser("push", help="upload a save_pretrained folder; prints the commit id")
    push.add_argument("directory")
    push.add_argument("repo_id")
    push.add_argument("--private", action="store_true")
    push.add_argument("--message", default="Upload keraszoo model")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    path = args.manifest
    try:
        if args.command == "list":
            for name in mf.list_models(path=path):
                print(name)
        elif args.command == "info":
            print(json.dumps(mf.info(args.name, path=path), indent=2, sort_keys=True))
        elif args.command == "check":
            report = mf.check_bundle_limits(path=path)
            count = len(mf.list_models(path=path))
            print(f"OK: {count} model(s), {len(report['models'])} bundled, "
                  f"{report['total_bytes']} bytes of bundled weights")
        elif args.command == "add":
            entry = mf.add_entry(
                args.name, args.directory, repo_id=args.repo_id, revision=args.revision,
                dataset=args.dataset, license={"weights": args.weights_license, "data": args.data_license},
                paper={"title": args.paper_title, "url": args.paper_url}, binarization=args.binarization,
                bundle=args.bundle, description=args.description, overwrite=args.overwrite, path=path,
            )
            print(f"added {args.name}: {entry['hub']['repo_id']}@{entry['hub']['revision']}"
                  + (f", bundled in {entry['bundled']}" if entry["bundled"] else ""))
        elif args.command == "metrics":
            with open(args.file, encoding="utf-8") as handle:
                payload = json.load(handle)
            metrics = payload.get("metrics", payload) if isinstance(payload, dict) else payload
            evaluation = payload.get("evaluation") if isinstance(payload, dict) and "metrics" in payload else None
            mf.set_metrics(args.name, metrics, evaluation=evaluation, path=path)
            print(f"recorded {len(metrics)} metric(s) for {args.name}")
        elif args.command == "push":
            from keraszoo.weights.publish import push_to_hub

            print(push_to_hub(args.directory, args.repo_id, private=args.private, commit_message=args.message))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
