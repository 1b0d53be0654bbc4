"""``keraszoo manifest ...``: the maintainers' commands on the weights manifest (no TensorFlow).

Typical publication of a trained model::

    keraszoo -q push runs/vae_mnist keraszoo/vae-mnist           # -> <commit>
    keraszoo manifest add vae_mnist runs/vae_mnist \\
        --repo-id keraszoo/vae-mnist --revision <commit> --dataset mnist \\
        --weights-license MIT --data-license "CC BY-SA 3.0" \\
        --paper-title "Auto-Encoding Variational Bayes" --paper-url https://arxiv.org/abs/1312.6114 --bundle

``--manifest FILE`` (before or after the sub-command) works on another
manifest than the active one (``$KERASZOO_MANIFEST`` or the packaged
``weights_manifest.json``).
"""

from __future__ import annotations

import argparse
import json

from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import print_json


def _add_manifest_option(parser, default):
    parser.add_argument("--manifest", metavar="FILE", default=default,
                        help="manifest file (default: $KERASZOO_MANIFEST or the packaged weights_manifest.json)")


def register(subparsers, common_parent):
    group = add_command(subparsers, common_parent, "manifest",
                        "inspect, check and extend the weights manifest (maintainers)",
                        examples("keraszoo manifest check", "keraszoo manifest list",
                                 "keraszoo manifest metrics vae_mnist results.json"))
    _add_manifest_option(group, None)
    sub = group.add_subparsers(dest="manifest_command", metavar="COMMAND", required=True)
    inner = argparse.ArgumentParser(add_help=False, parents=[common_parent])
    _add_manifest_option(inner, argparse.SUPPRESS)

    for add in (_add_list, _add_info, _add_check, _add_add, _add_metrics):
        add(sub, inner)


def _add_list(sub, inner):
    p = add_command(sub, inner, "list", "print the names in the manifest, one a line",
                    examples("keraszoo manifest list", "keraszoo manifest --manifest my/weights_manifest.json list"))
    p.set_defaults(func=cmd_list)


def cmd_list(args):
    from keraszoo.weights import manifest

    for name in manifest.list_models(path=args.manifest):
        print(name)
    return 0


def _add_info(sub, inner):
    p = add_command(sub, inner, "info", "print one entry as JSON", examples("keraszoo manifest info vae_mnist"))
    p.add_argument("name", metavar="NAME", help="manifest name")
    p.set_defaults(func=cmd_info)


def cmd_info(args):
    from keraszoo.weights import manifest

    print_json(manifest.info(args.name, path=args.manifest))
    return 0


def _add_check(sub, inner):
    p = add_command(sub, inner, "check", "validate the manifest and the bundled weights (size limits, digests)",
                    examples("keraszoo manifest check"))
    p.set_defaults(func=cmd_check)


def cmd_check(args):
    from keraszoo.weights import manifest

    report = manifest.check_bundle_limits(path=args.manifest)
    count = len(manifest.list_models(path=args.manifest))
    print(f"OK: {count} model(s), {len(report['models'])} bundled, "
          f"{report['total_bytes']} bytes of bundled weights")
    return 0


def _add_add(sub, inner):
    from keraszoo.weights.schema import BINARIZATIONS

    p = add_command(sub, inner, "add", "register a save_pretrained folder (digests computed, never typed)",
                    examples("keraszoo manifest add vae_mnist runs/vae_mnist --repo-id keraszoo/vae-mnist "
                             "--revision COMMIT --dataset mnist --weights-license MIT --data-license 'CC BY-SA 3.0' "
                             "--paper-title 'Auto-Encoding Variational Bayes' "
                             "--paper-url https://arxiv.org/abs/1312.6114 --bundle"))
    p.add_argument("name", metavar="NAME", help="manifest name of the model, e.g. vae_mnist")
    p.add_argument("directory", metavar="DIR", help="folder written by keraszoo.save_pretrained / keraszoo train")
    p.add_argument("--repo-id", required=True, help="Hub repository the weights are published in, org/name")
    p.add_argument("--revision", required=True, help="the commit id printed by 'keraszoo push' (40 hex digits)")
    p.add_argument("--dataset", required=True, help="training dataset, e.g. mnist")
    p.add_argument("--weights-license", required=True, help="license of the weights, e.g. MIT")
    p.add_argument("--data-license", required=True, help="license of the training data")
    p.add_argument("--paper-title", required=True, help="title of the paper the model follows")
    p.add_argument("--paper-url", required=True, help="link to the paper")
    p.add_argument("--binarization", default="none", choices=BINARIZATIONS,
                   help="input binarization the model was trained with (default: none)")
    p.add_argument("--description", help="one line shown by 'keraszoo info'")
    p.add_argument("--bundle", action="store_true", help="ship a copy inside the package")
    p.add_argument("--overwrite", action="store_true", help="replace an existing entry of that name")
    p.set_defaults(func=cmd_add)


def cmd_add(args):
    from keraszoo.weights import manifest

    entry = manifest.add_entry(
        args.name, args.directory, repo_id=args.repo_id, revision=args.revision, dataset=args.dataset,
        license={"weights": args.weights_license, "data": args.data_license},
        paper={"title": args.paper_title, "url": args.paper_url}, binarization=args.binarization,
        bundle=args.bundle, description=args.description, overwrite=args.overwrite, path=args.manifest,
    )
    print(f"added {args.name}: {entry['hub']['repo_id']}@{entry['hub']['revision']}"
          + (f", bundled in {entry['bundled']}" if entry["bundled"] else ""))
    return 0


def _add_metrics(sub, inner):
    p = add_command(sub, inner, "metrics", "record measured metrics from a JSON file",
                    examples("keraszoo manifest metrics vae_mnist results.json"))
    p.add_argument("name", metavar="NAME", help="manifest name")
    p.add_argument("file", metavar="FILE", help='JSON: {"metrics": {...}, "evaluation": {...}} or just the metrics')
    p.set_defaults(func=cmd_metrics)


def cmd_metrics(args):
    from keraszoo.weights import manifest

    with open(args.file, encoding="utf-8") as handle:
        payload = json.load(handle)
    wrapped = isinstance(payload, dict) and "metrics" in payload
    metrics = payload["metrics"] if wrapped else payload
    evaluation = payload.get("evaluation") if wrapped else None
    manifest.set_metrics(args.name, metrics, evaluation=evaluation, path=args.manifest)
    print(f"recorded {len(metrics)} metric(s) for {args.name}")
    return 0
