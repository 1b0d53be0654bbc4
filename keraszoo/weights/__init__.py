"""Pretrained weights: the manifest, verified loading, publishing.

Importing this package is cheap (no TensorFlow, Keras or huggingface_hub):
the loader and the publisher are imported on first use.

* :func:`load` / :func:`resolve` -- ``keraszoo.load(spec)`` and its TF-free first half.
* :func:`save_pretrained` / :func:`push_to_hub` -- write and publish a folder.
* :func:`list_models` / :func:`info` and the manifest tools in
  :mod:`keraszoo.weights.manifest` (:func:`add_entry`, :func:`write_manifest`, ...).
* :class:`IntegrityError` -- a file does not match its recorded sha256.
"""

import importlib

from keraszoo.weights.integrity import IntegrityError
from keraszoo.weights.manifest import UnknownModelError
from keraszoo.weights.schema import ManifestError

_LAZY = {
    "load": "keraszoo.weights.loader:load",
    "resolve": "keraszoo.weights.loader:resolve",
    "parse_spec": "keraszoo.weights.loader:parse_spec",
    "download_file": "keraszoo.weights.hub:download_file",
    "check_config_safety": "keraszoo.weights.loader:check_config_safety",
    "ResolvedWeights": "keraszoo.weights.loader:ResolvedWeights",
    "HubDownloadError": "keraszoo.weights.hub:HubDownloadError",
    "OfflineCacheMissError": "keraszoo.weights.hub:OfflineCacheMissError",
    "save_pretrained": "keraszoo.weights.publish:save_pretrained",
    "push_to_hub": "keraszoo.weights.publish:push_to_hub",
    "list_models": "keraszoo.weights.manifest:list_models",
    "info": "keraszoo.weights.manifest:info",
    "read_manifest": "keraszoo.weights.manifest:read_manifest",
    "write_manifest": "keraszoo.weights.manifest:write_manifest",
    "add_entry": "keraszoo.weights.manifest:add_entry",
    "set_metrics": "keraszoo.weights.manifest:set_metrics",
    "render_model_card": "keraszoo.weights.model_card:render_model_card",
}

__all__ = ["IntegrityError", "ManifestError", "UnknownModelError", *_LAZY]


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'keraszoo.weights' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
