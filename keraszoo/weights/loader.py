"""Load pretrained keraszoo models: from the zoo, from the Hugging Face Hub, or from a folder.

``keraszoo.load(spec)`` accepts three kinds of ``spec``:

* a manifest name such as ``"vae_mnist"``: the copy bundled in the package when
  it is present (``source="auto"`` or ``"bundled"``), else the Hub repository
  pinned in the manifest (``source="hub"`` forces the Hub);
* ``"hf://org/repo"`` or ``"hf://org/repo@revision"``: any repository written by
  :func:`keraszoo.save_pretrained` / :func:`keraszoo.push_to_hub`;
* a local directory written by :func:`keraszoo.save_pretrained`.

Loading happens in two steps. :func:`resolve` finds the files (downloading them
through ``huggingface_hub.hf_hub_download``, so its cache, ``HF_HOME``,
``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` all apply) and checks every file's sha256
against the manifest (zoo names) or the repository's own ``metadata.json``
(``hf://`` specs and folders) *before* Keras reads it, on every load, also
for files that come from the Hugging Face cache (an ``hf://`` repository's
``metadata.json`` is checked against its content address, the ETag the Hub
announced for it); it does not import TensorFlow. :func:`load` then checks that ``config.json`` only names keras /
keraszoo objects, rebuilds the model with ``safe_mode=True``, loads the weights,
and compiles it so that ``model.fit(...)`` fine-tunes straight away. Nothing is
ever unpickled. Downloads (retries, offline mode) are :mod:`keraszoo.weights.hub`'s;
a local folder is checked by :func:`keraszoo.weights.folder.verify_folder`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from keraszoo.weights import bundle as _bundle
from keraszoo.weights import manifest as _manifest
from keraszoo.weights.folder import MAX_METADATA_BYTES
from keraszoo.weights.folder import JSONTooDeepError
from keraszoo.weights.folder import files_table
from keraszoo.weights.folder import read_json
from keraszoo.weights.folder import verify_folder
from keraszoo.weights.hub import check_repo_id
from keraszoo.weights.hub import check_revision
from keraszoo.weights.hub import commit_of
from keraszoo.weights.hub import download_file
from keraszoo.weights.integrity import evict_cached_file
from keraszoo.weights.integrity import verify_file
from keraszoo.weights.schema import REPO_ID_PATTERN

__all__ = ["ResolvedWeights", "parse_spec", "resolve", "load", "check_config_safety"]

SOURCES = ("auto", "bundled", "hub")
MODEL_FILES = ("config.json", "model.weights.h5", "metadata.json")
ALLOWED_MODULES = ("keras", "keraszoo")

_MAX_CONFIG_BYTES = 10_000_000


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    """Verified files of one model, ready for Keras.

    Attributes:
        files: ``{"config.json": Path, "model.weights.h5": Path, "metadata.json": Path}``;
            every file's sha256 has been checked.
        source: ``"bundled"``, ``"hub"`` or ``"local"``.
        description: where the files come from, for messages (e.g. ``"hf://org/repo@<commit>"``).
        name: the manifest name, for zoo models.
        repo_id: the Hub repository, for Hub downloads.
        revision: the commit id the files belong to, when known.
        metadata: the parsed ``metadata.json``.
    """

    files: dict
    source: str
    description: str
    name: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    metadata: dict | None = None

    @property
    def directory(self) -> Path:
        """The folder holding ``config.json`` (a Hub snapshot, the bundled folder or the local folder)."""
        return Path(self.files["config.json"]).parent


# --------------------------------------------------------------------------- specs


def parse_spec(spec, revision=None):
    """Classify a load spec.

    Returns:
        ``("name", name, revision)``, ``("hub", repo_id, revision)`` or
        ``("local", Path, None)``.

    Raises:
        ValueError: malformed ``hf://`` spec (also a repository id or revision with ``..``,
            see :func:`keraszoo.weights.hub.check_revision`), conflicting revisions, or a path
            that does not exist.
    """
    if isinstance(spec, os.PathLike):
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ValueError(f"{str(spec)!r} is not a directory. Expected a folder written by keraszoo.save_pretrained().")
        return "local", path, None
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            "Expected a model name (e.g. 'vae_mnist'), 'hf://org/repo[@revision]' or a directory path; "
            f"got {spec!r}."
        )
    spec = spec.strip()
    if spec.startswith("hf://"):
        body = spec[len("hf://"):]
        repo_id, at, spec_revision = body.partition("@")
        repo_id = repo_id.strip("/")
        if not REPO_ID_PATTERN.match(repo_id):
            raise ValueError(f"Malformed Hub spec {spec!r}: expected 'hf://org/repo' or 'hf://org/repo@revision'.")
        try:
            check_repo_id(repo_id)
        except ValueError as err:
            raise ValueError(f"Malformed Hub spec {spec!r}: {err}") from None
        if at and not spec_revision:
            raise ValueError(f"Malformed Hub spec {spec!r}: empty revision after '@'.")
        if at and revision is not None and revision != spec_revision:
            raise ValueError(f"Conflicting revisions: {spec!r} pins {spec_revision!r} but revision={revision!r} was passed.")
        if at:
            try:
                check_revision(spec_revision)
            except ValueError as err:
                raise ValueError(f"Malformed Hub spec {spec!r}: {err}") from None
            return "hub", repo_id, spec_revision
        if revision is not None:
            check_revision(revision)
        return "hub", repo_id, revision
    path = Path(spec).expanduser()
    if path.is_dir():
        return "local", path, None
    if "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        hint = ""
        if REPO_ID_PATTERN.match(spec):
            hint = f" For the Hub repository, use 'hf://{spec}'."
        raise ValueError(f"No such directory: {spec!r}.{hint}")
    return "name", spec, revision


# --------------------------------------------------------------------------- resolve


def _resolve_name(name, revision, source, cache_dir):
    entry = _manifest.get_entry(name)
    hub = entry["hub"]
    if revision is not None and revision != hub["revision"]:
        raise ValueError(
            f"{name!r} is pinned to revision {hub['revision']} of {hub['repo_id']}; its digests do not "
            f"cover revision {revision!r}. To load another revision use "
            f"keraszoo.load('hf://{hub['repo_id']}@{revision}')."
        )
    records = hub["files"]
    if source in ("auto", "bundled"):
        folder = _manifest.bundled_dir(name)
        if _bundle.is_complete(folder, MODEL_FILES):
            files = {}
            for filename in MODEL_FILES:
                files[filename] = verify_file(
                    folder / filename,
                    records[filename]["sha256"],
                    expected_size=records[filename]["size"],
                    source=f"bundled copy of {name!r}",
                )
            metadata = read_json(files["metadata.json"], "metadata.json", MAX_METADATA_BYTES)
            return ResolvedWeights(files, "bundled", f"bundled {name!r} ({folder})", name=name,
                                   repo_id=hub["repo_id"], revision=hub["revision"], metadata=metadata)
        if source == "bundled":
            why = "is not bundled with keraszoo" if folder is None else f"has no complete bundled copy at {folder}"
            raise ValueError(f"{name!r} {why}; use source='hub' (or 'auto') to download it from {hub['repo_id']}.")
    if hub["revision"] is None:
        raise ValueError(
            f"{name!r} has not been published on the Hub yet (its manifest entry has no pinned revision); "
            f"it ships with keraszoo: load it with source='auto' or source='bundled'."
        )
    description = f"hf://{hub['repo_id']}@{hub['revision']} ({name!r})"
    files = {}
    for filename in MODEL_FILES:
        files[filename] = download_file(
            hub["repo_id"], filename, revision=hub["revision"], cache_dir=cache_dir,
            expected=records[filename], description=description,
        )
    metadata = read_json(files["metadata.json"], "metadata.json", MAX_METADATA_BYTES)
    return ResolvedWeights(files, "hub", description, name=name, repo_id=hub["repo_id"],
                           revision=hub["revision"], metadata=metadata)


def _resolve_hub(repo_id, revision, cache_dir):
    revision = revision or "main"
    meta_path = download_file(repo_id, "metadata.json", revision=revision, cache_dir=cache_dir)
    commit = commit_of(meta_path, revision)
    description = f"hf://{repo_id}@{commit}"
    try:
        metadata = read_json(meta_path, "metadata.json", MAX_METADATA_BYTES)
        records = files_table(metadata, description)
    except ValueError:
        try:
            evict_cached_file(meta_path)  # do not keep a broken trust root in the cache
        except OSError:  # a read-only cache: the error about the file is the one to report
            pass
        raise
    files = {"metadata.json": meta_path}
    for filename in ("config.json", "model.weights.h5"):
        # Pin the rest to the commit metadata.json came from: a push in between cannot mix versions.
        files[filename] = download_file(repo_id, filename, revision=commit, cache_dir=cache_dir,
                                        expected=records[filename], description=description)
    return ResolvedWeights(files, "hub", description, repo_id=repo_id, revision=commit, metadata=metadata)


def _resolve_local(path):
    path = Path(path)
    metadata = verify_folder(path)
    files = {filename: path / filename for filename in MODEL_FILES}
    return ResolvedWeights(files, "local", str(path), metadata=metadata)


def resolve(spec, *, revision=None, source="auto", cache_dir=None) -> ResolvedWeights:
    """Find and verify the files of a model, without importing TensorFlow.

    Args:
        spec: a manifest name, ``"hf://org/repo[@revision]"`` or a directory.
        revision: Hub revision (branch, tag or commit) for ``hf://`` specs; for a
            manifest name only its pinned revision is accepted.
        source: ``"auto"`` (bundled copy when present, else the Hub), ``"bundled"``
            or ``"hub"``.
        cache_dir: Hugging Face cache folder (default ``$HF_HUB_CACHE``).

    Returns:
        a :class:`ResolvedWeights` whose files all passed the sha256 check.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}.")
    kind, value, spec_revision = parse_spec(spec, revision)
    if kind == "name":
        return _resolve_name(value, spec_revision, source, cache_dir)
    if kind == "hub":
        if source == "bundled":
            raise ValueError(f"source='bundled' only applies to zoo names (see keraszoo.list_models()), not {spec!r}.")
        return _resolve_hub(value, spec_revision, cache_dir)
    if source != "auto":
        raise ValueError(f"source={source!r} does not apply to a local directory ({value}); leave source='auto'.")
    if revision is not None:  # the caller's argument: parse_spec gives no revision for a folder
        raise ValueError(f"revision={revision!r} does not apply to a local directory ({value}); revisions name Hub versions.")
    return _resolve_local(value)


# --------------------------------------------------------------------------- config safety


def _module_allowed(module) -> bool:
    return module is None or any(module == m or module.startswith(m + ".") for m in ALLOWED_MODULES)


#: The deepest nesting of objects and lists a ``config.json`` may have (keraszoo's own: under 20 levels). Deeper
#: ones are refused before Python's recursion limit (about 1,000 levels) breaks the walk below or Keras' rebuild.
MAX_CONFIG_DEPTH = 100


def _check_depth(config, source):
    """Refuses ``config`` nested deeper than :data:`MAX_CONFIG_DEPTH` (walked without recursion)."""
    stack = [(config, 1)]
    while stack:
        obj, depth = stack.pop()
        if not isinstance(obj, (dict, list)):
            continue
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"Refusing to load {source}: it nests objects and lists more than {MAX_CONFIG_DEPTH} "
                             "levels deep; a keraszoo config nests fewer than 20. Save the model again with "
                             "keraszoo.save_pretrained().")
        stack.extend((value, depth + 1) for value in (obj.values() if isinstance(obj, dict) else obj))


def check_config_safety(config, *, source="config.json") -> None:
    """Refuse configs that would make Keras import or call anything outside keras / keraszoo.

    Walks the whole serialized object. Every nested object's ``module`` must be
    ``keras``/``keras.*``/``keraszoo``/``keraszoo.*``; ``registered_name``
    packages must be ``keras`` or ``keraszoo``; lambdas are refused. The top-level
    object must be a registered keraszoo model.

    Raises:
        ValueError: naming the offending entry and its location, or a config nested deeper than
            :data:`MAX_CONFIG_DEPTH` levels.
    """
    _check_depth(config, source)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{source} is not a serialized Keras object (no 'class_name').")
    registered = config.get("registered_name")
    if not (isinstance(registered, str) and registered.startswith("keraszoo>")):
        raise ValueError(
            f"Refusing to load {source}: its top-level object is {registered or config.get('class_name')!r}, "
            "not a keraszoo model ('keraszoo>...')."
        )

    def refuse(where, what):
        raise ValueError(
            f"Refusing to load {source}: {what} at {where}. Only keras and keraszoo objects may appear in a "
            "keraszoo config."
        )

    def walk(obj, where):
        if isinstance(obj, dict):
            if "class_name" in obj:
                class_name = obj.get("class_name")
                module = obj.get("module")
                reg = obj.get("registered_name")
                if class_name in ("__lambda__", "Lambda"):
                    refuse(where, f"a {class_name} (arbitrary Python code)")
                if module is not None and (not isinstance(module, str) or not _module_allowed(module)):
                    refuse(where, f"module {module!r} (class {class_name!r})")
                if isinstance(reg, str) and ">" in reg and reg.split(">", 1)[0] not in ALLOWED_MODULES:
                    refuse(where, f"registered name {reg!r}")
                if class_name == "function" and module is None:
                    refuse(where, f"a function {obj.get('config')!r} without a keras module")
            for key, value in obj.items():
                walk(value, f"{where}.{key}")
        elif isinstance(obj, list):
            for index, value in enumerate(obj):
                walk(value, f"{where}[{index}]")

    walk(config, "config")


# --------------------------------------------------------------------------- load


def _build_model(resolved: ResolvedWeights, compile: bool):
    try:
        config = read_json(resolved.files["config.json"], "config.json", _MAX_CONFIG_BYTES)
    except JSONTooDeepError:  # nested beyond what Python's JSON parser follows
        raise ValueError(f"Refusing to load config.json of {resolved.description}: it nests objects and lists more "
                         f"than {MAX_CONFIG_DEPTH} levels deep (too deep to parse).") from None
    check_config_safety(config, source=f"config.json of {resolved.description}")
    config = dict(config)
    config.pop("compile_config", None)  # compiled below with the variant's defaults

    import keras

    import keraszoo.models  # noqa: F401 - registers the keraszoo classes with Keras

    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as err:
        raise ValueError(f"Could not rebuild the model from config.json of {resolved.description}: {err}") from err
    if not isinstance(model, keras.Model):
        raise ValueError(f"config.json of {resolved.description} describes a {type(model).__name__}, not a keras.Model.")
    try:
        model.load_weights(str(resolved.files["model.weights.h5"]))
    except Exception as err:
        raise ValueError(
            f"The weights of {resolved.description} do not fit the architecture in its config.json: {err}"
        ) from err
    expected_params = (resolved.metadata or {}).get("parameter_count")
    if expected_params is not None and model.count_params() != expected_params:
        raise ValueError(
            f"{resolved.description}: the rebuilt model has {model.count_params()} parameters, "
            f"metadata.json records {expected_params}."
        )
    if compile:
        model.compile()
    return model


def load(spec, *, revision=None, source="auto", cache_dir=None, compile=True):
    """Load a pretrained keraszoo model, verified and ready to use or fine-tune.

    Args:
        spec: a manifest name (``"vae_mnist"``, see :func:`keraszoo.list_models`),
            ``"hf://org/repo"`` / ``"hf://org/repo@revision"``, or a directory
            written by :func:`keraszoo.save_pretrained`.
        revision: Hub branch, tag or commit for ``hf://`` specs (default ``"main"``).
        source: ``"auto"`` (bundled copy if present, else the Hub), ``"bundled"`` or ``"hub"``.
        cache_dir: Hugging Face cache folder (default ``$HF_HUB_CACHE``, i.e. ``$HF_HOME/hub``).
        compile: compile the model with its default optimizer (so ``model.fit`` works at once).

    Returns:
        the keraszoo model (a ``keras.Model``), weights loaded, compiled.

    Raises:
        UnknownModelError: unknown name (the message suggests close names).
        IntegrityError: a file does not match its sha256 (it is removed from the cache).
        HubDownloadError / OfflineCacheMissError (:mod:`keraszoo.weights.hub`): the files could not be fetched.
        ValueError: bad spec, unsafe config, or weights that do not fit the architecture.

    Example:
        >>> model = keraszoo.load("hf://keraszoo/vae-mnist")
        >>> model.fit(my_images, epochs=2)   # fine-tune
    """
    resolved = resolve(spec, revision=revision, source=source, cache_dir=cache_dir)
    return _build_model(resolved, compile)
