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
(``hf://`` specs and folders) *before* Keras reads it; it does not import
TensorFlow. :func:`load` then checks that ``config.json`` only names keras /
keraszoo objects, rebuilds the model with ``safe_mode=True``, loads the weights,
and compiles it so that ``model.fit(...)`` fine-tunes straight away. Nothing is
ever unpickled.

Transient download failures (HTTP 408/429/5xx, timeouts, dropped or truncated
transfers) are retried a bounded number of times with exponential backoff:
``$KERASZOO_HUB_ATTEMPTS`` attempts (default 3), waiting
``$KERASZOO_HUB_BACKOFF`` seconds (default 1.0) after the first, doubling, at
most 8 s. (When the Hub cannot be reached at all and the file is not cached,
``huggingface_hub`` has already retried its metadata request with backoff;
that failure is reported at once.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from pathlib import Path

from keraszoo.weights import manifest as _manifest
from keraszoo.weights.integrity import IntegrityError, evict_cached_file, verify_file

__all__ = [
    "HubDownloadError",
    "OfflineCacheMissError",
    "ResolvedWeights",
    "parse_spec",
    "resolve",
    "load",
    "check_config_safety",
    "download_file",
]

logger = logging.getLogger("keraszoo.weights")

SOURCES = ("auto", "bundled", "hub")
MODEL_FILES = ("config.json", "model.weights.h5", "metadata.json")
ALLOWED_MODULES = ("keras", "keraszoo")

_MAX_CONFIG_BYTES = 10_000_000
_MAX_METADATA_BYTES = 2_000_000
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)


class HubDownloadError(OSError):
    """A file could not be fetched from the Hub (after retrying transient failures)."""


class OfflineCacheMissError(HubDownloadError, FileNotFoundError):
    """Offline mode (``HF_HUB_OFFLINE=1``) is on and the file is not in the local cache."""


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
        ValueError: malformed ``hf://`` spec, conflicting revisions, or a path that does not exist.
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
        if not _REPO_ID_RE.match(repo_id):
            raise ValueError(f"Malformed Hub spec {spec!r}: expected 'hf://org/repo' or 'hf://org/repo@revision'.")
        if at and not spec_revision:
            raise ValueError(f"Malformed Hub spec {spec!r}: empty revision after '@'.")
        if at and revision is not None and revision != spec_revision:
            raise ValueError(f"Conflicting revisions: {spec!r} pins {spec_revision!r} but revision={revision!r} was passed.")
        return "hub", repo_id, (spec_revision if at else revision)
    path = Path(spec).expanduser()
    if path.is_dir():
        return "local", path, None
    if "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        hint = ""
        if _REPO_ID_RE.match(spec):
            hint = f" For the Hub repository, use 'hf://{spec}'."
        raise ValueError(f"No such directory: {spec!r}.{hint}")
    return "name", spec, revision


# --------------------------------------------------------------------------- downloads


def _env_number(name, default, kind=float):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"${name} must be a number, got {value!r}.") from None
    if number < 0:
        raise ValueError(f"${name} must be >= 0, got {value!r}.")
    return number


def _retry_policy():
    attempts = max(1, _env_number("KERASZOO_HUB_ATTEMPTS", 3, int))
    backoff = _env_number("KERASZOO_HUB_BACKOFF", 1.0, float)
    return attempts, backoff


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.is_offline_mode()) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _is_transient(err) -> bool:
    """Whether a download error is worth retrying (network trouble, not a wrong request)."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    if isinstance(err, IntegrityError):
        return False
    if isinstance(err, hf_errors.OfflineModeIsEnabled):
        return False
    if isinstance(err, hf_errors.LocalEntryNotFoundError):
        # The metadata request failed and the cache is cold: huggingface_hub has already retried
        # it with backoff (about 20 s), another round would only multiply the wait.
        return False
    if isinstance(err, (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError,
                        hf_errors.EntryNotFoundError)):
        return False
    if isinstance(err, hf_errors.HfHubHTTPError):
        response = getattr(err, "response", None)
        return response is not None and response.status_code in _TRANSIENT_STATUS
    if isinstance(err, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
        return True
    if type(err) is OSError and "Consistency check failed" in str(err):
        # huggingface_hub's size check: the body was shorter/longer than announced.
        return True
    return False


def _describe(err) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _commit_of(pointer_path, fallback):
    """The commit id of a file returned by hf_hub_download (``.../snapshots/<commit>/<file>``)."""
    parent = Path(pointer_path).parent.name
    return parent if _COMMIT_RE.match(parent) else fallback


def download_file(repo_id, filename, *, revision=None, cache_dir=None, expected=None, description=None) -> Path:
    """Fetch one file of a Hub repository into the Hugging Face cache and verify it.

    Goes through ``huggingface_hub.hf_hub_download`` (so the cache, ``HF_HOME``,
    ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` apply). Transient failures are
    retried with exponential backoff (see the module docstring).

    Args:
        repo_id: ``"org/name"``.
        filename: file inside the repository.
        revision: branch, tag or commit id (default ``"main"``).
        cache_dir: Hugging Face cache folder (default: ``$HF_HUB_CACHE``, i.e. ``$HF_HOME/hub``).
        expected: ``{"sha256": ..., "size": ...}`` to check; a mismatching file is removed
            from the cache (snapshot symlink and blob) and :class:`IntegrityError` is raised.
        description: how to name the source in messages.

    Returns:
        the path of the cached file (inside ``snapshots/<commit>/``).

    Raises:
        IntegrityError: the downloaded bytes do not match ``expected``.
        OfflineCacheMissError: offline mode is on and the file is not cached.
        HubDownloadError: the repository/revision/file does not exist, or the
            download kept failing.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub import errors as hf_errors

    from keraszoo.version import __version__

    revision = revision or "main"
    where = description or f"{constants.ENDPOINT}/{repo_id} (revision {revision})"
    offline = _offline()
    attempts, backoff = _retry_policy()
    last_error = None
    for attempt in range(1, attempts + 1):
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                library_name="keraszoo",
                library_version=__version__,
                local_files_only=offline,
            )
        except hf_errors.RepositoryNotFoundError as err:
            raise HubDownloadError(
                f"Repository {repo_id!r} was not found on {constants.ENDPOINT} (it does not exist, is "
                "private, or your token has no access to it)."
            ) from err
        except hf_errors.RevisionNotFoundError as err:
            raise HubDownloadError(f"Revision {revision!r} does not exist in {repo_id!r} on {constants.ENDPOINT}.") from err
        except hf_errors.RemoteEntryNotFoundError as err:
            raise HubDownloadError(
                f"{where} has no file {filename!r}. Is it a repository written by keraszoo.save_pretrained()?"
            ) from err
        except Exception as err:  # noqa: BLE001 - classified below, re-raised when not transient
            if isinstance(err, hf_errors.OfflineModeIsEnabled) or (
                isinstance(err, hf_errors.LocalEntryNotFoundError)
                and (offline or isinstance(err.__cause__, hf_errors.OfflineModeIsEnabled))
            ):
                cache = cache_dir or constants.HF_HUB_CACHE
                raise OfflineCacheMissError(
                    f"Offline mode is on (HF_HUB_OFFLINE=1) and {filename!r} of {repo_id} (revision {revision}) "
                    f"is not in the Hugging Face cache at {cache}. Load it once with network access "
                    "(it is then cached), or unset HF_HUB_OFFLINE."
                ) from err
            if isinstance(err, hf_errors.LocalEntryNotFoundError):
                cause = err.__cause__ if err.__cause__ is not None else err
                raise HubDownloadError(
                    f"Could not reach {constants.ENDPOINT} for {filename!r} of {repo_id} (revision {revision}), "
                    f"and it is not in the Hugging Face cache: {_describe(cause)}. Check your connection "
                    "(or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only cached files."
                ) from err
            if not _is_transient(err):
                raise
            last_error = err
            if attempt < attempts:
                delay = min(8.0, backoff * (2 ** (attempt - 1)))
                logger.warning(
                    "Downloading %s from %s failed (%s); retrying in %.2fs [attempt %d/%d].",
                    filename, where, _describe(err), delay, attempt, attempts,
                )
                time.sleep(delay)
            continue
        if expected is not None:
            verify_file(
                path,
                expected["sha256"],
                expected_size=expected.get("size"),
                filename=filename,
                source=where,
                evict=True,
            )
        return Path(path)
    raise HubDownloadError(
        f"Could not download {filename!r} from {where} after {attempts} attempt(s); last error: "
        f"{_describe(last_error)}. Check your connection (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 "
        "to use only cached files."
    ) from last_error


# --------------------------------------------------------------------------- resolve


def _read_json_file(path, what, limit):
    size = Path(path).stat().st_size
    if size > limit:
        raise ValueError(f"{what} ({path}) is {size} bytes, larger than the {limit} bytes keraszoo accepts.")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} ({path}) is not valid JSON: {err}") from None


def _files_table(metadata, where):
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"metadata.json of {where} has no 'files' table; was it written by keraszoo.save_pretrained()?")
    for filename in ("config.json", "model.weights.h5"):
        record = files.get(filename)
        if not (isinstance(record, dict) and isinstance(record.get("sha256"), str)):
            raise ValueError(f"metadata.json of {where} records no sha256 for {filename!r}.")
    return files


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
        present = folder is not None and all((folder / f).is_file() for f in MODEL_FILES)
        if present:
            files = {}
            for filename in MODEL_FILES:
                files[filename] = verify_file(
                    folder / filename,
                    records[filename]["sha256"],
                    expected_size=records[filename]["size"],
                    source=f"bundled copy of {name!r}",
                )
            metadata = _read_json_file(files["metadata.json"], "metadata.json", _MAX_METADATA_BYTES)
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
    metadata = _read_json_file(files["metadata.json"], "metadata.json", _MAX_METADATA_BYTES)
    return ResolvedWeights(files, "hub", description, name=name, repo_id=hub["repo_id"],
                           revision=hub["revision"], metadata=metadata)


def _resolve_hub(repo_id, revision, cache_dir):
    revision = revision or "main"
    meta_path = download_file(repo_id, "metadata.json", revision=revision, cache_dir=cache_dir)
    commit = _commit_of(meta_path, revision)
    description = f"hf://{repo_id}@{commit}"
    try:
        metadata = _read_json_file(meta_path, "metadata.json", _MAX_METADATA_BYTES)
        records = _files_table(metadata, description)
    except ValueError:
        evict_cached_file(meta_path)  # do not keep a broken trust root in the cache
        raise
    files = {"metadata.json": meta_path}
    for filename in ("config.json", "model.weights.h5"):
        # Pin the rest to the commit metadata.json came from: a push in between cannot mix versions.
        files[filename] = download_file(repo_id, filename, revision=commit, cache_dir=cache_dir,
                                        expected=records[filename], description=description)
    return ResolvedWeights(files, "hub", description, repo_id=repo_id, revision=commit, metadata=metadata)


def _resolve_local(path):
    path = Path(path)
    if not (path / "metadata.json").is_file():
        raise ValueError(
            f"{path} has no metadata.json: expected a folder written by keraszoo.save_pretrained() "
            "(config.json, model.weights.h5, metadata.json)."
        )
    metadata = _read_json_file(path / "metadata.json", "metadata.json", _MAX_METADATA_BYTES)
    records = _files_table(metadata, str(path))
    files = {"metadata.json": path / "metadata.json"}
    for filename in ("config.json", "model.weights.h5"):
        files[filename] = verify_file(path / filename, records[filename]["sha256"],
                                      expected_size=records[filename].get("size"), source=str(path))
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
    kind, value, revision = parse_spec(spec, revision)
    if kind == "name":
        return _resolve_name(value, revision, source, cache_dir)
    if kind == "hub":
        if source == "bundled":
            raise ValueError(f"source='bundled' only applies to zoo names (see keraszoo.list_models()), not {spec!r}.")
        return _resolve_hub(value, revision, cache_dir)
    if source != "auto":
        raise ValueError(f"source={source!r} does not apply to a local directory ({value}); leave source='auto'.")
    if revision is not None:
        raise ValueError("revision= does not apply to a local directory.")
    return _resolve_local(value)


# --------------------------------------------------------------------------- config safety


def _module_allowed(module) -> bool:
    return module is None or any(module == m or module.startswith(m + ".") for m in ALLOWED_MODULES)


def check_config_safety(config, *, source="config.json") -> None:
    """Refuse configs that would make Keras import or call anything outside keras / keraszoo.

    Walks the whole serialized object. Every nested object's ``module`` must be
    ``keras``/``keras.*``/``keraszoo``/``keraszoo.*``; ``registered_name``
    packages must be ``keras`` or ``keraszoo``; lambdas are refused. The top-level
    object must be a registered keraszoo model.

    Raises:
        ValueError: naming the offending entry and its location.
    """
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
    config = _read_json_file(resolved.files["config.json"], "config.json", _MAX_CONFIG_BYTES)
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
        HubDownloadError / OfflineCacheMissError: the files could not be fetched.
        ValueError: bad spec, unsafe config, or weights that do not fit the architecture.

    Example:
        >>> model = keraszoo.load("hf://keraszoo/vae-mnist")
        >>> model.fit(my_images, epochs=2)   # fine-tune
    """
    resolved = resolve(spec, revision=revision, source=source, cache_dir=cache_dir)
    return _build_model(resolved, compile)
