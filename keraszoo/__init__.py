"""keraszoo: autoencoders for Keras 3 with pretrained, verified weights.

Importing ``keraszoo`` is cheap: TensorFlow/Keras are only imported when a
function that needs them is first used, so ``keraszoo.list_models()`` and
``keraszoo.info()`` answer instantly.
"""

import importlib

from keraszoo.version import __version__

# name -> "module:attribute", resolved lazily on first access.
_LAZY = {
    "models": "keraszoo.models",
    "data": "keraszoo.data",
    "list_models": "keraszoo.weights.manifest:list_models",
    "info": "keraszoo.weights.manifest:info",
    "load": "keraszoo.weights.loader:load",
    "save_pretrained": "keraszoo.weights.publish:save_pretrained",
    "push_to_hub": "keraszoo.weights.publish:push_to_hub",
    "evaluate": "keraszoo.evaluation:evaluate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'keraszoo' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
