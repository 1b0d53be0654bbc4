"""Publishing: write a pretrained folder (``save_pretrained``) and push it to the Hub.

A folder written by :func:`save_pretrained` holds:

* ``config.json`` -- ``keras.saving.serialize_keras_object(model)`` (without the
  compile config: :func:`keraszoo.load` compiles with the variant's defaults);
* ``model.weights.h5`` -- the weights (``model.save_weights``);
* ``model.keras`` -- a Keras archive, for users of plain ``keras.saving.load_model``;
* ``README.md`` -- the model card with the Hub's YAML header;
* optional images (``reconstructions.png``, ``samples.png``) that were already in the folder;
* ``metadata.json`` -- versions, parameter count, input contract, metrics, recipe,
  date, and the sha256 + size of every other file. ``keraszoo.load("hf://...")``
  checks the downloaded files against it.

``config.json`` + ``model.weights.h5`` is also Keras' own directory layout, so
``keras.saving.load_model("hf://org/repo")`` loads a pushed folder too (after
``import keraszoo.models``).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

from keraszoo import output_folder
from keraszoo.utils import atomic_write_text
from keraszoo.weights.folder import folder_records
from keraszoo.weights.folder import verify_folder
from keraszoo.weights.model_card import IMAGE_FILES
from keraszoo.weights.model_card import render_model_card
from keraszoo.weights.schema import validate_metrics
from keraszoo.weights.schema import validate_recipe

__all__ = ["save_pretrained", "push_to_hub", "METADATA_FORMAT"]

#: ``metadata.json["format"]`` of folders written by this module.
METADATA_FORMAT = "keraszoo-pretrained"
METADATA_FORMAT_VERSION = 1


def _check_model(model):
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"save_pretrained expects a keraszoo model (a keras.Model), got {type(model).__name__}.")
    registered = keras.saving.get_registered_name(type(model))
    if not registered.startswith("keraszoo>"):
        raise ValueError(
            f"save_pretrained expects a keraszoo model (see keraszoo.models.list_variants()); "
            f"{type(model).__name__} is registered as {registered!r}."
        )
    from keraszoo.models import BaseAutoEncoder

    if not isinstance(model, BaseAutoEncoder) or model.variant is None:
        raise ValueError(f"save_pretrained expects a keraszoo autoencoder (a variant of keraszoo.models.list_variants()); "
                         f"{type(model).__name__} is registered as {registered!r} but is none.")
    return registered


def _normalize_dataset(dataset):
    if dataset is None:
        return None
    if isinstance(dataset, str):
        return {"name": dataset}
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        return dict(dataset)
    raise ValueError(f"dataset must be a name or a dict with a 'name', got {dataset!r}.")


def _save_inference_weights(model, config, path):
    """Writes the model's variables without optimizer state (3x smaller).

    ``model.save_weights`` also stores the optimizer's slots once the model has
    been compiled and trained; a published checkpoint needs only the model, so
    the variables are copied into a fresh, uncompiled twin that is saved instead.
    """
    import keras

    twin = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if len(twin.variables) != len(model.variables):
        raise ValueError("save_pretrained: the model rebuilt from its config has a different set of variables.")
    for target, source in zip(twin.variables, model.variables, strict=True):
        target.assign(source)
    _write_atomically(path, lambda tmp: twin.save_weights(str(tmp)))


def _write_atomically(path, write):
    """``write(tmp)`` to a file named as ``path`` in a hidden folder beside it, then renamed into place.

    Keras picks the format from the file name (``.weights.h5``, ``.keras``), so the
    temporary file keeps ``path``'s name; a failed write leaves nothing behind.
    """
    path = Path(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staging", dir=path.parent))
    try:
        write(staging / path.name)
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _normalize_notes(notes):
    if notes is None:
        return []
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in notes):
        raise ValueError(f"notes must be a string or a list of non-empty strings, got {notes!r}.")
    return [n.strip() for n in notes]


def save_pretrained(
    model,
    directory,
    *,
    metrics=None,
    recipe=None,
    dataset=None,
    license="MIT",
    data_license=None,
    paper=None,
    repo_id=None,
    keras_archive=True,
    zoo_name=None,
    notes=None,
    overwrite=False,
) -> Path:
    """Write ``model`` as a self-describing, hash-verified pretrained folder.

    Args:
        model: a keraszoo model (``keraszoo.models.*``).
        directory: target folder, created if needed. It must be empty or hold an earlier
            ``save_pretrained`` (whose files are replaced), unless ``overwrite``; image files already
            there (``reconstructions.png``, ``samples.png``, ...) are kept, hashed and embedded in the
            model card. Inside a folder its caller holds (``keraszoo train`` saving its run) the
            caller's rule applies (:mod:`keraszoo.output_folder`).
        metrics: measured metrics, ``{name: number}`` (finite numbers).
        recipe: training recipe: ``command``, ``epochs``, ``batch_size``, ``seed``,
            ``hardware``, ``wall_time_s``.
        dataset: training dataset name (``"mnist"``) or ``{"name": ..., ...}``.
        license: license of the weights (default MIT, the project's license).
        data_license: license of the training data (e.g. ``"CC BY-SA 3.0"`` for MNIST).
        paper: ``{"title": ..., "url": ...}`` of the paper the variant comes from.
        repo_id: Hub repository the folder is meant for (used in the card's usage snippet).
        zoo_name: the manifest name of a zoo model (the card then loads it by name).
        keras_archive: also write ``model.keras`` (a full Keras archive).
        notes: sentences a user must read before using the numbers (how the test
            set was binarized, a lossy dataset copy, a quality target that was not
            reached); kept in ``metadata.json`` and shown in the card.
        overwrite: write into a folder that holds other files (those of the same names are replaced).

    Returns:
        the folder's path.

    Raises:
        OutputFolderError: ``directory`` is a file, holds files keraszoo did not save there
            (without ``overwrite``), or another job is writing into it.
    """
    registered = _check_model(model)
    if metrics is not None:
        validate_metrics(metrics, source="save_pretrained(metrics=...)", where="metrics")
        metrics = {str(k): float(v) for k, v in metrics.items()}
    if recipe is not None:
        validate_recipe(recipe, source="save_pretrained(recipe=...)", where="recipe")
        recipe = dict(recipe)
    dataset = _normalize_dataset(dataset)
    notes = _normalize_notes(notes)
    if paper is not None and not (isinstance(paper, dict) and paper.get("title")):
        raise ValueError(f"paper must be a dict with at least a 'title' (and a 'url'), got {paper!r}.")

    with output_folder.claim(directory, "save_pretrained", overwrite=overwrite, flag=None,
                             ignore=tuple(IMAGE_FILES)) as folder:
        return _write_folder(model, folder, registered=registered, metrics=metrics, recipe=recipe,
                             dataset=dataset, license=license, data_license=data_license, paper=paper,
                             repo_id=repo_id, keras_archive=keras_archive, zoo_name=zoo_name, notes=notes)


def _write_folder(model, directory, *, registered, metrics, recipe, dataset, license, data_license, paper, repo_id,
                  keras_archive, zoo_name, notes) -> Path:
    """The files of :func:`save_pretrained` in the claimed ``directory``, each written atomically."""
    import keras

    from keraszoo.version import __version__

    config = keras.saving.serialize_keras_object(model)
    config = dict(config)
    config.pop("compile_config", None)
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n")
    _save_inference_weights(model, config, directory / "model.weights.h5")
    if keras_archive:
        _write_atomically(directory / "model.keras", lambda tmp: model.save(str(tmp)))
    else:
        (directory / "model.keras").unlink(missing_ok=True)

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # another Keras backend
        tf_version = None

    metadata = {
        "format": METADATA_FORMAT,
        "format_version": METADATA_FORMAT_VERSION,
        "keraszoo_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf_version,
        "backend": keras.backend.backend(),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "model": {
            "class": type(model).__name__,
            "registered_name": registered,
            "variant": model.variant,
            "latent_dim": int(model.latent_dim),
            "architecture": model.architecture,
            "is_generative": bool(model.is_generative),
        },
        "parameter_count": int(model.count_params()),
        "input": {
            "image_shape": [int(d) for d in model.image_shape],
            "dtype": "float32",
            "value_range": [0.0, 1.0],
        },
        "dataset": dataset,
        "metrics": metrics or {},
        "recipe": recipe,
        "license": {"weights": license, "data": data_license},
        "paper": paper,
        "notes": notes,
    }
    images = sorted(name for name in IMAGE_FILES if (directory / name).is_file())
    atomic_write_text(directory / "README.md", render_model_card(metadata, images=images, repo_id=repo_id,
                                                              keras_archive=keras_archive, zoo_name=zoo_name))

    metadata["files"] = folder_records(directory, exclude=("metadata.json",))
    atomic_write_text(directory / "metadata.json", json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return directory


def push_to_hub(
    directory_or_model,
    repo_id,
    *,
    token=None,
    private=False,
    commit_message="Upload keraszoo model",
    revision=None,
    endpoint=None,
    **save_kwargs,
) -> str:
    """Upload a pretrained folder (or a model, saved first) to a Hub repository.

    The folder is checked against its ``metadata.json`` first (so a folder edited
    after :func:`save_pretrained` is not published), the repository is created
    if needed (``HfApi.create_repo(exist_ok=True)``) and the files listed in
    ``metadata.json`` are uploaded in one commit (``HfApi.upload_folder``).

    Args:
        directory_or_model: a folder written by :func:`save_pretrained`, or a keraszoo
            model (``save_kwargs`` are then passed to :func:`save_pretrained`).
        repo_id: ``"org/name"``.
        token: Hub token (default: the logged-in token / ``$HF_TOKEN``).
        private: create the repository as private.
        commit_message: the commit's title.
        revision: branch to commit to (default ``main``).
        endpoint: Hub endpoint (default ``$HF_ENDPOINT`` / huggingface.co).

    Returns:
        the commit id (40 hex digits): pin it in the manifest
        (``keraszoo.weights.manifest.add_entry(..., revision=...)``).
    """
    from huggingface_hub import HfApi

    from keraszoo.version import __version__

    if isinstance(directory_or_model, (str, os.PathLike)):
        if save_kwargs:
            raise ValueError(f"{sorted(save_kwargs)} only apply when pushing a model, not a folder.")
        return _push_folder(Path(directory_or_model), repo_id, token=token, private=private,
                            commit_message=commit_message, revision=revision, endpoint=endpoint,
                            api_cls=HfApi, version=__version__)
    with tempfile.TemporaryDirectory(prefix="keraszoo-push-") as tmp:
        folder = save_pretrained(directory_or_model, Path(tmp) / "model", repo_id=repo_id, **save_kwargs)
        return _push_folder(folder, repo_id, token=token, private=private, commit_message=commit_message,
                            revision=revision, endpoint=endpoint, api_cls=HfApi, version=__version__)


def _push_folder(folder, repo_id, *, token, private, commit_message, revision, endpoint, api_cls, version):
    metadata = verify_folder(folder)
    allow = sorted(set(metadata["files"]) | {"metadata.json"})
    api = api_cls(endpoint=endpoint, token=token, library_name="keraszoo", library_version=version)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        repo_id=getattr(repo_url, "repo_id", None) or repo_id,
        folder_path=str(folder),
        commit_message=commit_message,
        allow_patterns=allow,
        revision=revision,
        repo_type="model",
    )
    return info.oid
