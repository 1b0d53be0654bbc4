"""Model cards (``README.md``) for folders written by :func:`keraszoo.save_pretrained`.

The card starts with the YAML header the Hugging Face Hub reads
(``library_name``, ``license``, ``tags``, ``datasets``, ``metrics``), followed
by a short description, a usage snippet, the input contract, a results table,
the training recipe, embedded images (``reconstructions.png``, ``samples.png``)
when the folder has them, and the license / citation section.

No TensorFlow import: the card is rendered from the metadata dict.
"""

from __future__ import annotations

import json
import re

from keraszoo.utils import format_number

__all__ = ["render_model_card", "hub_license_id", "IMAGE_FILES"]

#: Image files embedded in the card when present in the folder, with their captions.
IMAGE_FILES = {
    "reconstructions.png": "Reconstructions (top: inputs, bottom: reconstructions)",
    "samples.png": "Samples from the prior",
    "interpolations.png": "Latent-space interpolations",
    "latent_manifold.png": "The 2-D latent space: decoder outputs on a grid of prior quantiles",
    "class_samples.png": "Samples by class (row c: samples asked for class c)",
}

# License identifiers the Hub understands (subset); anything else becomes "other".
_HUB_LICENSES = {
    "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "gpl-3.0", "lgpl-3.0", "openrail", "unknown",
}

def _variant_title(variant) -> str:
    """The variant class's own ``title`` (``"variational autoencoder"``), or its key if unknown."""
    from keraszoo.models import list_variants

    cls = list_variants().get(variant)
    return (cls.title if cls is not None else None) or str(variant)


def hub_license_id(license_name) -> str:
    """Map a license name (``"MIT"``, ``"Apache 2.0"``, ``"CC BY-SA 3.0"``) to a Hub license id."""
    if not license_name:
        return "unknown"
    candidate = re.sub(r"[\s_]+", "-", str(license_name).strip().lower())
    candidate = candidate.replace("--", "-")
    if candidate in _HUB_LICENSES:
        return candidate
    return "other"


def _yaml_str(value) -> str:
    # A JSON string is a valid YAML flow scalar, and quoting avoids YAML's surprises
    # ("no" -> false, "1e3" -> float, ": " in values, ...).
    return json.dumps(str(value), ensure_ascii=False)


def _yaml_list(key, values):
    if not values:
        return []
    return [f"{key}:"] + [f"- {_yaml_str(v)}" for v in values]


def _escape_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_model_card(metadata: dict, *, images=(), repo_id=None, keras_archive=True, zoo_name=None) -> str:
    """Render the ``README.md`` model card for a folder's ``metadata.json`` content.

    Args:
        metadata: the metadata written by :func:`keraszoo.save_pretrained` (the
            ``files`` table is not needed).
        images: names of image files present in the folder, embedded when known
            (see :data:`IMAGE_FILES`).
        repo_id: Hub repository id for the usage snippet, when known.
        keras_archive: whether the folder has a ``model.keras`` archive.
        zoo_name: manifest name of a zoo model: the usage snippet loads it by name.
    """
    model = metadata.get("model", {})
    variant = model.get("variant") or "model"
    class_name = model.get("class") or "keraszoo model"
    dataset = metadata.get("dataset") or {}
    dataset_name = dataset.get("name") if isinstance(dataset, dict) else dataset
    license_info = metadata.get("license") or {}
    weights_license = license_info.get("weights")
    metrics = metadata.get("metrics") or {}
    recipe = metadata.get("recipe")
    paper = metadata.get("paper") or {}
    contract = metadata.get("input") or {}

    header = ["---", "library_name: keras"]
    lic = hub_license_id(weights_license)
    header.append(f"license: {lic}")
    if lic == "other" and weights_license:
        header.append(f"license_name: {_yaml_str(weights_license)}")
    tags = ["keraszoo", "autoencoder", variant]
    if model.get("is_generative"):
        tags.append("generative")
    header += _yaml_list("tags", tags)
    header += _yaml_list("datasets", [dataset_name] if dataset_name else [])
    header += _yaml_list("metrics", sorted(metrics))
    header.append("---")

    what = _variant_title(variant)
    trained_on = f", trained on {dataset_name}" if dataset_name else ""
    spec = f"hf://{repo_id}" if repo_id else "hf://<org>/<repo>"
    lines = header + [
        "",
        f"# {class_name} ({variant})",
        "",
        f"A keraszoo {what}{trained_on}: latent dimension {model.get('latent_dim')}, "
        f"{model.get('architecture')} architecture, {metadata.get('parameter_count')} parameters.",
        "",
    ]
    notes = metadata.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    lines += [
        "## Usage",
        "",
        "```python",
        "import keraszoo",
        "",
        (f'model = keraszoo.load("{zoo_name}")  # bundled with keraszoo, verified, compiled' if zoo_name
         else f'model = keraszoo.load("{spec}")  # verified, compiled, ready to fine-tune'),
        "codes = model.encode(images)      # images: float32 in [0, 1], shape (batch,) + image_shape",
        "reconstructions = model.reconstruct(images)",
        "```",
        "",
        "The folder is also a plain Keras model directory (`config.json` + `model.weights.h5`)"
        + (", and `model.keras` a Keras archive; both load" if keras_archive else "; it loads"),
        "with `keras.saving.load_model(...)` (e.g. `keras.saving.load_model(\"" + spec + "\")`) once",
        "`keraszoo.models` is imported (it registers the classes).",
        "",
        "## Input",
        "",
        f"- shape: `{tuple(contract.get('image_shape', ()))}` (height, width, channels; channels last)",
        f"- dtype: `{contract.get('dtype', 'float32')}`",
        f"- value range: `{contract.get('value_range', [0.0, 1.0])}`",
        "",
        "## Results",
        "",
    ]
    if metrics:
        lines += ["| Metric | Value |", "|---|---|"]
        lines += [f"| {_escape_cell(k)} | {format_number(v)} |" for k, v in sorted(metrics.items())]
    else:
        lines.append("No metrics were recorded for these weights.")
    lines.append("")
    if recipe:
        lines += ["## Training", ""]
        if recipe.get("command"):
            lines += ["```bash", str(recipe["command"]), "```", ""]
        lines += ["| Setting | Value |", "|---|---|"]
        for key in sorted(k for k in recipe if k != "command"):
            lines.append(f"| {_escape_cell(key)} | {_escape_cell(format_number(recipe[key]))} |")
        lines.append("")
    shown = [name for name in IMAGE_FILES if name in set(images)]
    if shown:
        lines += ["## Images", ""]
        for name in shown:
            lines += [f"![{IMAGE_FILES[name]}]({name})", ""]
    lines += ["## License", ""]
    lines.append(f"- Weights: {weights_license or 'unspecified'}")
    if license_info.get("data"):
        lines.append(f"- Training data ({dataset_name or 'dataset'}): {license_info['data']}")
    lines.append("")
    if paper.get("title"):
        lines += ["## Reference", ""]
        ref = f"{paper['title']}"
        if paper.get("authors"):
            ref = f"{paper['authors']}. {ref}"
        if paper.get("year"):
            ref += f" ({paper['year']})"
        if paper.get("url"):
            ref += f". {paper['url']}"
        lines += [ref, ""]
    versions = (
        f"keraszoo {metadata.get('keraszoo_version')}, Keras {metadata.get('keras_version')}, "
        f"TensorFlow {metadata.get('tensorflow_version')}"
    )
    lines += [f"_Saved with {versions} on {metadata.get('date_saved')}._", ""]
    return "\n".join(lines)
