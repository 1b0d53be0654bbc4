"""``keraszoo list`` and ``keraszoo info``: the published models, read from the manifest (no TensorFlow)."""

from __future__ import annotations

import json

from keraszoo.cli._shared import CommandError
from keraszoo.cli._shared import add_command
from keraszoo.cli._shared import examples
from keraszoo.cli._shared import print_json
from keraszoo.cli._shared import shape_text
from keraszoo.utils import format_number


def register(subparsers, common_parent):
    _add_list(subparsers, common_parent)
    _add_info(subparsers, common_parent)


# --------------------------------------------------------------------------- list


def _manifest_rows(names):
    from keraszoo.weights import manifest

    rows = []
    for name in names:
        entry = manifest.info(name)
        config = entry["model"].get("config", {})
        rows.append({
            "name": name,
            "class": entry["model"]["class"],
            "variant": entry["model"]["variant"],
            "latent_dim": config.get("latent_dim"),
            "architecture": config.get("architecture"),
            "dataset": entry["dataset"]["name"],
            "input_shape": entry["input"]["shape"],
            "bundled": bool(entry["bundled_available"]),
            "repo_id": entry["hub"]["repo_id"],
            "revision": entry["hub"]["revision"],
            "description": entry.get("description"),
            "metrics": entry["metrics"],
        })
    return rows


def _add_list(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "list",
                    "list the published pretrained models (reads the manifest; no TensorFlow)",
                    examples("keraszoo list", "keraszoo list 'vae*'", "keraszoo list --json"))
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'vae*' or '*_mnist'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)


def cmd_list(args):
    from keraszoo.weights import manifest

    rows = _manifest_rows(manifest.list_models(args.pattern))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        if args.pattern:
            print(f"No pretrained model matches {args.pattern!r}.")
        else:
            print("No pretrained models are published in this version of keraszoo yet. Load your own with "
                  "keraszoo.load('hf://org/repo') or a save_pretrained folder.")
        return 0
    header = ("NAME", "MODEL", "DATASET", "INPUT", "LATENT", "WEIGHTS")
    table = [header] + [
        (r["name"], f"{r['class']} ({r['architecture'] or '?'})", r["dataset"], shape_text(r["input_shape"]),
         str(r["latent_dim"]), "bundled" if r["bundled"] else f"hf://{r['repo_id']}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


# --------------------------------------------------------------------------- info


def _print_mapping(title, mapping, indent="  "):
    if not mapping:
        return
    print(f"{title}:")
    width = max(len(str(k)) for k in mapping)
    for key, value in mapping.items():
        print(f"{indent}{str(key).ljust(width)}  {format_number(value)}")


def _info_local(args, path):
    metadata_path = path / "metadata.json"
    if not metadata_path.is_file():
        raise CommandError(f"{path} has no metadata.json: expected a folder written by keraszoo.save_pretrained().")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CommandError(f"{metadata_path} is not valid JSON: {err}") from err
    if args.json:
        print_json(metadata)
        return 0
    model = metadata.get("model") or {}
    shape = (metadata.get("input") or {}).get("image_shape") or []
    print(f"{path}  (save_pretrained folder)")
    print(f"  model:    {model.get('class')} (variant {model.get('variant')}, {model.get('architecture')}), "
          f"latent_dim {model.get('latent_dim')}, {metadata.get('parameter_count')} parameters")
    print(f"  input:    {shape_text(shape)} float32 in [0, 1]")
    if metadata.get("dataset"):
        print(f"  dataset:  {metadata['dataset'].get('name')}")
    print(f"  saved:    {metadata.get('date_saved')} with keraszoo {metadata.get('keraszoo_version')}, "
          f"keras {metadata.get('keras_version')}")
    recipe = metadata.get("recipe") or {}
    if recipe.get("command"):
        print(f"  command:  {recipe['command']}")
    _print_mapping("metrics", metadata.get("metrics") or {})
    return 0


def _add_info(subparsers, common_parent):
    p = add_command(subparsers, common_parent, "info",
                    "describe a pretrained model: architecture, data, recipe, metrics",
                    examples("keraszoo info vae_mnist", "keraszoo info vae_mnist --json",
                             "keraszoo info runs/my_vae"))
    p.add_argument("name", metavar="NAME", help="manifest name, or a save_pretrained folder")
    p.add_argument("--json", action="store_true", help="print the full entry as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args):
    from keraszoo.weights import loader
    from keraszoo.weights import manifest

    kind, value, _ = loader.parse_spec(args.name)
    if kind == "local":
        return _info_local(args, value)
    if kind == "hub":
        raise CommandError(
            f"'info' reads the zoo's manifest; {args.name!r} is a Hub repository. Load it with "
            f"'keraszoo reconstruct {args.name} ...' or read its README.md on the Hub."
        )
    entry = manifest.info(value)
    if args.json:
        print_json(entry)
        return 0
    model, config = entry["model"], entry["model"].get("config", {})
    contract, hub, recipe = entry["input"], entry["hub"], entry["recipe"]
    print(value + (f" - {entry['description']}" if entry.get("description") else ""))
    print(f"  model:    {model['class']} (variant {model['variant']}, {config.get('architecture')}), "
          f"latent_dim {config.get('latent_dim')}")
    print(f"  input:    {shape_text(contract['shape'])} {contract['dtype']} in "
          f"[{contract['value_range'][0]:g}, {contract['value_range'][1]:g}], binarization {contract['binarization']}")
    dataset = entry["dataset"]
    print(f"  dataset:  {dataset['name']}" + (f" ({dataset['split']})" if dataset.get("split") else ""))
    where = (f"hf://{hub['repo_id']}@{hub['revision']}" if hub.get("revision")
             else f"hf://{hub['repo_id']} (not yet published on the Hub)")
    print(f"  weights:  {where}" + (", bundled with keraszoo" if entry["bundled_available"] else ""))
    print(f"  trained:  {recipe['epochs']} epochs, batch {recipe['batch_size']}, seed {recipe['seed']}, "
          f"on {recipe['hardware']} in {recipe['wall_time_s']:.0f} s")
    print(f"  command:  {recipe['command']}")
    print(f"  license:  weights {entry['license']['weights']}, data {entry['license']['data']}")
    print(f"  paper:    {entry['paper']['title']} {entry['paper'].get('url', '')}".rstrip())
    _print_mapping("metrics", entry["metrics"])
    print(f"load it:    keraszoo.load({value!r})")
    return 0
