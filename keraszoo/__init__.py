"""keraszoo: autoencoders for Keras 3 with pretrained, verified weights.

Importing ``keraszoo`` is cheap: TensorFlow/Keras are only imported when a
function that needs them is first used, so ``keraszoo.list_models()`` and
``keraszoo.info()`` answer instantly.

Plain Keras finds keraszoo's classes once ``keraszoo`` is imported, in either
order: ``import keras, keraszoo; keras.saving.load_model("model.keras")`` works.
The variants register with Keras when ``keraszoo.models`` is imported; importing
``keraszoo`` does that at once if Keras is loaded already, and otherwise as soon
as Keras is first imported (:class:`_AfterKerasImport`), so that a process that
never imports Keras (``keraszoo list``) never loads it.
"""

import importlib
import importlib.abc
import sys
import threading

from keraszoo.version import __version__

# name -> "module:attribute", resolved lazily on first access.
_LAZY = {
    "models": "keraszoo.models",
    "data": "keraszoo.data",
    "list_models": "keraszoo.weights.manifest:list_models",
    "info": "keraszoo.weights.manifest:info",
    "load": "keraszoo.weights.loader:load",
    "create_model": "keraszoo.models:create_model",
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


# --------------------------------------------------------------------------- Keras serialization
class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Imports ``keraszoo.models`` (registering the variants with Keras) right after ``keras`` is first imported.

    It finds ``keras`` with the other finders and wraps the loader it gets: when the module has been
    executed, the finder leaves ``sys.meta_path`` and ``keraszoo.models`` is imported.
    """

    def __init__(self):
        self._finding = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or getattr(self._finding, "active", False):
            return None
        self._finding.active = True
        try:
            spec = next((found for found in (f.find_spec(fullname, path, target) for f in sys.meta_path if f is not self)
                         if found is not None), None)
        finally:
            self._finding.active = False
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """``loader``, then ``import keraszoo.models`` once the module has run (see :class:`_AfterKerasImport`)."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name):  # get_source, is_package ...: the wrapped loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        importlib.import_module("keraszoo.models")


def _register_with_keras():
    if "keras" in sys.modules:
        importlib.import_module("keraszoo.models")
    elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())


_register_with_keras()
