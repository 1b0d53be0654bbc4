"""Keeping TensorFlow's start-up chatter off the command line's stderr (unless ``--debug``).

TensorFlow 2.21 writes C++ log lines while it is imported ("oneDNN custom operations
are on", "All log messages before absl::InitializeLog() ...") whatever
``TF_CPP_MIN_LOG_LEVEL`` says. The command line promises one line per error and
nothing else on stderr, so the import of ``tensorflow`` runs with file descriptor 2
pointed at ``/dev/null``; everything after the import is reported as usual.

The full ``tensorflow`` wheel (the one with GPU support) also logs "failed call to
cuInit" when it first looks for devices on a machine without a GPU driver. That
happens after the import, at the first op, so the silenced import also lists the
physical devices once: TensorFlow looks for GPUs then, with stderr still pointed
away. Listing physical devices does not initialise the runtime, so logical device
configuration (``--cpu-replicas``) still works afterwards.
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _stderr_silenced():
                exec_module(module)
                module.config.list_physical_devices()

        spec.loader.exec_module = quiet_exec_module
        return spec


def quiet_tensorflow():
    """Silence TensorFlow's logs for this process (before TensorFlow is imported)."""
    # 3: not even C++ ERROR lines, such as TF 2.21's "NodeDef mentions attribute
    # use_unbounded_threadpool" at the first epoch of a tf.data pipeline, which
    # is harmless; real failures still reach Python as exceptions, and --debug
    # (or TF_CPP_MIN_LOG_LEVEL set by the user) shows everything.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
