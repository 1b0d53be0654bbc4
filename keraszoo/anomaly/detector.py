"""An anomaly detector on any keraszoo autoencoder: :class:`Detector` (scikit-learn's and PyOD's conventions).

::

    from keraszoo.anomaly import Detector

    detector = Detector("vae", fpr=0.05, epochs=20).fit(x_normal)    # a fresh VAE trained on the normal images
    flags = detector.predict(x_new)                                   # 0 normal, 1 anomaly (PyOD)
    scores = detector.decision_function(x_new)                        # higher = more anomalous (PyOD)
    detector.save("det/");  detector = Detector.load("det/")

**The model.** ``model`` is a variant key or preset (``"vae"``, ``"conv_ae"``: a fresh model of the images'
shape, trained on the normal images by keraszoo's training engine, :func:`keraszoo.training.train.run`), a zoo
name (``"vae_mnist"``), ``hf://org/repo[@rev]`` or a ``save_pretrained`` folder (loaded with
:func:`keraszoo.load`, fine-tuned only when ``epochs`` is given), or a keraszoo model object (used as it is,
fine-tuned only when ``epochs`` is given).

**Calibration.** ``fit(x)`` holds out ``calibration_fraction`` of the normal images (a fixed random subset,
``seed``), trains on the rest (when it trains), scores the held-out ones and sets the threshold to their
``1 − fpr`` quantile (NumPy's ``method="higher"``: one of their scores, with at most a fraction ``fpr`` of
them above it): about a fraction ``fpr`` of normal images is flagged. A model that is not trained and a
score that fits nothing (all but ``latent``) calibrate on every image given. The ``latent`` score fits its
Gaussian of codes (:meth:`~keraszoo.models.anomaly_scores.AnomalyScoresMixin.fit_anomaly_reference`) on the
training part.

**Signs.** PyOD's and scikit-learn's conventions, both exactly:

* :meth:`Detector.decision_function` -- the raw anomaly score, **higher = more anomalous** (PyOD's
  ``decision_function``; ``model.anomaly_score`` of the detector's method);
* :meth:`Detector.score_samples` -- its negative, **higher = more normal** (scikit-learn's ``score_samples``,
  as ``IsolationForest``'s and ``OneClassSVM``'s);
* :meth:`Detector.predict` -- ``1`` for an anomaly (``decision_function > threshold_``), ``0`` for a normal
  image (PyOD's labels; not scikit-learn's ``-1/+1``).

After ``fit``: ``model_``, ``method_``, ``threshold_``, ``decision_scores_`` (the calibration images' scores)
and ``labels_`` (their predictions), as PyOD's detectors have them.

**Saving.** :meth:`Detector.save` writes the model with :func:`keraszoo.save_pretrained` and adds the
detector to that folder: an ``anomaly`` section in ``metadata.json`` (method, threshold, fpr, calibration
statistics, how the model was trained) and ``anomaly.npz`` (the calibration scores and the latent reference,
plain arrays, no pickle) recorded with its sha256 in the folder's files table. :meth:`Detector.load` verifies
every file against those digests (:func:`keraszoo.weights.folder.verify_folder`) and loads the model in safe
mode, as :func:`keraszoo.load` does. ``keraszoo.load(folder)`` still loads the model alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import json
import pathlib
import tempfile

import numpy as np

from keraszoo.errors import UsageError

__all__ = ["DETECTOR_FORMAT", "Detector", "NotFittedError", "is_detector_folder"]

#: ``metadata.json["anomaly"]["format"]`` of a saved detector, and its version.
DETECTOR_FORMAT = "keraszoo-anomaly-detector"
DETECTOR_FORMAT_VERSION = 1
#: The detector's own file in the saved folder (recorded in the files table).
ARRAYS_FILE = "anomaly.npz"
#: The job that claims a detector's folder (:mod:`keraszoo.output_folder`).
JOB = "anomaly"
#: Epochs a fresh variant trains when ``epochs`` is not given.
DEFAULT_EPOCHS = 20
#: Calibration quantiles recorded in the metadata.
QUANTILES = (0.5, 0.9, 0.95, 0.99)


class NotFittedError(ValueError, AttributeError):
    """The detector is used before ``fit`` (scikit-learn's ``NotFittedError`` is a ValueError and AttributeError too)."""


def _check_fraction(name, value, *, low_open=True):
    import numbers

    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value) and (
        0 < value < 1 if low_open else 0 <= value < 1)
    if not ok:
        raise ValueError(f"`{name}` must be a number in {'(0, 1)' if low_open else '[0, 1)'}; received {value!r}.")
    return float(value)


@dataclasses.dataclass
class _Training:
    """How the detector's model came about (recorded in the saved metadata)."""

    source: str
    kind: str  # "fresh" (trained here), "pretrained" (used as it is), "finetuned"
    epochs: int
    train_images: int
    calibration_images: int


class Detector:
    """Anomaly detection with a keraszoo autoencoder; see the module docstring.

    Args:
        model: a variant key or preset (trained on the normal images), a zoo name, ``hf://`` spec or
            ``save_pretrained`` folder, or a keraszoo model.
        method: the anomaly score (``model.anomaly_methods``; ``None``: the model's ``default_anomaly_method``).
        fpr: the false-positive rate the threshold is set to on held-out normal images, in (0, 1).
        calibration_fraction: the share of the normal images held out to set the threshold, in (0, 1).
        epochs: training epochs (``None``: 20 for a fresh variant, none for a given or loaded model).
        batch_size, lr: the training's.
        model_kwargs: constructor arguments of a fresh variant (``{"latent_dim": 16}``).
        num_samples: posterior draws of the ``elbo`` / ``iwae`` scores (``None``: the model's defaults).
        seed: the training's seed, the calibration split's and the stochastic scores' draws.
        verbose: the training's progress output (0: none).
    """

    def __init__(self, model="vae", *, method=None, fpr=0.05, calibration_fraction=0.2, epochs=None, batch_size=128,
                 lr=1e-3, model_kwargs=None, num_samples=None, seed=0, verbose=0):
        self.model = model
        self.method = method
        self.fpr = fpr
        self.calibration_fraction = calibration_fraction
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.model_kwargs = model_kwargs
        self.num_samples = num_samples
        self.seed = seed
        self.verbose = verbose
        self._argv = None  # the command line a training run records (keraszoo anomaly fit sets it)
        self._out = None  # the folder fit's training run wrote (save completes it in place)

    # ------------------------------------------------------------------ scikit-learn's estimator API
    _PARAMS = ("model", "method", "fpr", "calibration_fraction", "epochs", "batch_size", "lr", "model_kwargs",
               "num_samples", "seed", "verbose")

    def get_params(self, deep=True) -> dict:
        del deep
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> Detector:
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"Invalid parameter {name!r} for Detector; valid: {', '.join(self._PARAMS)}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        model = self.model if isinstance(self.model, str) else type(self.model).__name__
        return f"Detector(model={model!r}, method={self.method!r}, fpr={self.fpr!r})"

    # ------------------------------------------------------------------ fit
    def fit(self, x, y=None, *, labels=None, out=None, source=None):
        """Train (when asked) and calibrate on normal images ``x``; returns ``self``.

        Args:
            x: normal images ``(n,) + shape``, floats in [0, 1] (uint8 0..255 are scaled).
            y: ignored (scikit-learn's convention: an unsupervised detector takes none).
            labels: the class labels of a conditional model's images.
            out: the folder a training run writes to (``keraszoo anomaly fit --out``); ``None``: a temporary one.
            source: where the images came from (recorded).
        """
        del y
        fpr = _check_fraction("fpr", self.fpr)
        fraction = _check_fraction("calibration_fraction", self.calibration_fraction)
        x = _as_images(x)
        model, kind, name = self._resolve_model(x.shape[1:])
        epochs = self._epochs(kind)
        built = model if model is not None else self._recipe(name, 1).build_model(tuple(x.shape[1:]))
        method = self._check_method(built)
        labels = None if labels is None else np.asarray(labels)
        if built.requires_labels and labels is None:
            raise ValueError(f"{type(built).__name__} is conditional: Detector.fit needs the class labels of the images "
                             "(labels=...).")
        split = epochs > 0 or method == "latent"
        if split:
            if len(x) < 2:
                raise ValueError(f"Detector.fit holds out a share of the normal images to set its threshold: it needs "
                                 f"at least 2 images; received {len(x)}.")
            order = np.random.default_rng(self.seed).permutation(len(x))
            n_cal = min(len(x) - 1, max(1, int(round(fraction * len(x)))))
            cal, train = np.sort(order[:n_cal]), np.sort(order[n_cal:])
        else:
            cal = train = np.arange(len(x))
        x_train, x_cal = x[train], x[cal]
        y_train = None if labels is None else labels[train]
        y_cal = None if labels is None else labels[cal]
        if epochs > 0:
            model = self._train(model, kind, name, x_train, y_train, epochs, out, source)
            kind = "fresh" if kind == "fresh" else "finetuned"
        model._check_anomaly_method(method)  # a VQ-VAE's prior exists once trained
        self._out = None if out is None else pathlib.Path(out).expanduser()
        self.model_, self.method_ = model, method
        self.reference_ = None
        if method == "latent":
            self.reference_ = model.fit_anomaly_reference(x_train, **model.label_kwargs(y_train))
        scores = self._scores(x_cal, y_cal)
        self.threshold_ = float(np.quantile(scores, 1.0 - fpr, method="higher"))  # at most fpr of them above it
        self.decision_scores_ = scores
        self.labels_ = (scores > self.threshold_).astype("int64")
        self.fpr_ = fpr
        self.training_ = _Training(source=name, kind=kind, epochs=int(epochs), train_images=int(len(train)),
                                   calibration_images=int(len(cal)))
        return self

    def _check_method(self, model):
        """The detector's score for ``model``: ``method``, or the model's default; an unavailable one is refused before
        any training (a learned prior's ``prior``: when the model trains one)."""
        method = self.method if self.method is not None else model.default_anomaly_method
        if method == "prior" and model.has_second_stage and "prior" not in model.anomaly_methods:
            return method  # its prior is trained with the model (a training option), checked after training
        model._check_anomaly_method(method)
        return method

    def _recipe(self, variant, epochs, kind="fresh"):
        """The :class:`~keraszoo.training.recipe.Recipe` training ``variant`` on the given images."""
        from keraszoo.training.recipe import Recipe
        from keraszoo.training.recipe import option_flags

        given = dict(self.model_kwargs or {}) if kind == "fresh" else {}
        options = {k: given.pop(k) for k in list(given) if k in option_flags()}
        return Recipe(model=variant, model_kwargs=given, options=options, dataset="custom", epochs=epochs,
                      batch_size=self.batch_size, lr=self.lr, seed=self.seed, eval=False)

    def _epochs(self, kind) -> int:
        if self.epochs is None:
            return DEFAULT_EPOCHS if kind == "fresh" else 0
        import numbers

        if isinstance(self.epochs, bool) or not isinstance(self.epochs, numbers.Integral) or self.epochs < 0:
            raise ValueError(f"`epochs` must be a non-negative integer (0: no training) or None; received {self.epochs!r}.")
        if kind == "fresh" and self.epochs == 0:
            raise ValueError(f"Detector(model={self.model!r}) builds a fresh, untrained model: it needs epochs >= 1.")
        return int(self.epochs)

    def _resolve_model(self, image_shape):
        """``(model, kind, name)``: ``kind`` ``"fresh"`` (a variant to train) or ``"pretrained"``."""
        import keraszoo
        from keraszoo.models import BaseAutoEncoder

        spec = self.model
        if isinstance(spec, BaseAutoEncoder):
            self._check_shape(spec, image_shape, type(spec).__name__)
            return spec, "pretrained", f"a {type(spec).__name__} object"
        spec = str(spec) if isinstance(spec, pathlib.Path) else spec
        if model_kind(spec) == "fresh":
            if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
                raise TypeError(f"model_kwargs must be a dict of constructor arguments; received {self.model_kwargs!r}.")
            return None, "fresh", spec
        if self.model_kwargs:
            raise ValueError(f"model_kwargs apply to a fresh variant; {spec!r} is a trained model.")
        model = keraszoo.load(spec)
        self._check_shape(model, image_shape, spec)
        return model, "pretrained", spec

    @staticmethod
    def _check_shape(model, image_shape, name):
        if tuple(model.image_shape) != tuple(image_shape):
            shape = "x".join(map(str, image_shape))
            expected = "x".join(map(str, model.image_shape))
            raise ValueError(f"{name} takes images of {expected}; the images given are {shape}.")

    def _train(self, model, kind, name, x, labels, epochs, out, source):
        """The model trained on ``x`` by keraszoo's training engine (a fresh variant, or fine-tuning ``model``)."""
        from keraszoo.training.train import StartFrom
        from keraszoo.training.train import TrainImages
        from keraszoo.training.train import run

        recipe = self._recipe(name if kind == "fresh" else model.variant, epochs, kind)
        start = None if kind == "fresh" else StartFrom(model, name=name)
        images = TrainImages(x, labels, source=source)
        quiet = contextlib.redirect_stdout(io.StringIO()) if not self.verbose else contextlib.nullcontext()
        with tempfile.TemporaryDirectory(prefix="keraszoo-detector-") as tmp, quiet:
            result = run(recipe, tmp if out is None else out, verbose=self.verbose, initial_weights=start,
                         train_data=images, argv=self._argv,
                         prog="keraszoo anomaly fit" if self._argv is not None else None)
            if result.status != 0:
                raise RuntimeError("Training the detector's model diverged (the loss became NaN/inf); lower lr.")
            return result.model

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self):
        if not hasattr(self, "threshold_"):
            raise NotFittedError("This Detector is not fitted yet: call fit(x_normal) first, or Detector.load(folder).")

    def _scores(self, x, labels):
        return self.model_.anomaly_score(x, self.method_, num_samples=self.num_samples, seed=self.seed,
                                         reference=self.reference_, **self.model_.label_kwargs(labels))

    def decision_function(self, x, *, labels=None) -> np.ndarray:
        """The anomaly score of each image, **higher = more anomalous** (PyOD's convention): float64 ``(n,)``."""
        self._check_fitted()
        return self._scores(_as_images(x), None if labels is None else np.asarray(labels))

    def score_samples(self, x, *, labels=None) -> np.ndarray:
        """``-decision_function(x)``: **higher = more normal** (scikit-learn's convention)."""
        return -self.decision_function(x, labels=labels)

    def predict(self, x, *, labels=None) -> np.ndarray:
        """``1`` for an anomaly (score above ``threshold_``), ``0`` for a normal image (PyOD's labels): int64 ``(n,)``."""
        return (self.decision_function(x, labels=labels) > self.threshold_).astype("int64")

    def fit_predict(self, x, y=None, **kwargs) -> np.ndarray:
        """``fit(x)`` then the labels of its calibration images (``labels_``)."""
        return self.fit(x, y, **kwargs).labels_

    # ------------------------------------------------------------------ the record
    def calibration(self) -> dict:
        """The calibration's statistics (what ``metadata.json`` records)."""
        self._check_fitted()
        s = np.asarray(self.decision_scores_, "float64")
        return {"count": int(len(s)), "mean": float(s.mean()), "std": float(s.std()), "min": float(s.min()),
                "max": float(s.max()), "quantiles": {f"{q:g}": float(np.quantile(s, q)) for q in QUANTILES},
                "false_positive_rate": float(np.mean(s > self.threshold_))}

    def _section(self) -> dict:
        t = self.training_
        return {
            "format": DETECTOR_FORMAT,
            "format_version": DETECTOR_FORMAT_VERSION,
            "method": self.method_,
            "score": "higher = more anomalous (decision_function); score_samples is its negative",
            "threshold": self.threshold_,
            "fpr": self.fpr_,
            "num_samples": self.num_samples,
            "seed": int(self.seed),
            "conditional": bool(self.model_.requires_labels),
            "calibration": self.calibration(),
            "model": {"source": t.source, "kind": t.kind, "epochs": t.epochs, "train_images": t.train_images,
                      "calibration_images": t.calibration_images},
        }

    # ------------------------------------------------------------------ save / load
    def save(self, path, *, overwrite=False, flag=None):
        """Write the detector to the folder ``path`` (see the module docstring); returns its path.

        The folder follows keraszoo's output rule (:mod:`keraszoo.output_folder`): empty, this detector's own, or
        ``overwrite``. A folder a training run of :meth:`fit` (``out=``) wrote is completed in place.
        """
        import keraszoo
        from keraszoo import output_folder

        self._check_fitted()
        path = pathlib.Path(path).expanduser()
        out = self._out  # the folder fit's training run wrote: completed in place
        trained_here = out is not None and (path / "metadata.json").is_file() and path.resolve() == out.resolve()
        with output_folder.claim(path, JOB, overwrite=overwrite or trained_here, flag=flag) as folder:
            if not trained_here:
                keraszoo.save_pretrained(self.model_, folder, keras_archive=False, overwrite=True,
                                         notes=[f"An anomaly detector (keraszoo.anomaly.Detector, score "
                                                f"{self.method_!r}): load it with Detector.load(folder)."])
            self._write_section(folder)
        return path

    def _write_section(self, folder):
        from keraszoo.utils import atomic_path
        from keraszoo.utils import atomic_write_text
        from keraszoo.weights.integrity import file_record

        arrays = {"calibration_scores": np.asarray(self.decision_scores_, "float64")}
        if self.reference_ is not None:
            arrays.update({f"reference_{k}": v for k, v in self.reference_.to_arrays().items()})
        with atomic_path(folder / ARRAYS_FILE, mode=0o644) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        meta_path = folder / "metadata.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["files"][ARRAYS_FILE] = file_record(folder / ARRAYS_FILE)
        meta["anomaly"] = self._section()
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path) -> Detector:
        """A saved detector: every file checked against its sha256 (``metadata.json``), the model rebuilt in safe mode."""
        import keraszoo
        from keraszoo.models.anomaly_scores import LatentReference
        from keraszoo.weights.folder import verify_folder

        path = pathlib.Path(path).expanduser()
        meta = verify_folder(path)
        section = meta.get("anomaly")
        if not isinstance(section, dict) or section.get("format") != DETECTOR_FORMAT:
            raise ValueError(f"{path} holds a keraszoo model but no anomaly detector (no 'anomaly' section in its "
                             "metadata.json): make one with Detector(...).fit(x).save(folder) or keraszoo anomaly fit.")
        if section.get("format_version", 0) > DETECTOR_FORMAT_VERSION:
            raise ValueError(f"{path}: the detector was saved by a newer keraszoo (format version "
                             f"{section.get('format_version')}); upgrade keraszoo to load it.")
        if ARRAYS_FILE not in meta["files"]:
            raise ValueError(f"{path}/metadata.json records no {ARRAYS_FILE}: the detector's folder is incomplete.")
        model = keraszoo.load(path)
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        detector = cls(model, method=section["method"], fpr=section["fpr"], num_samples=section.get("num_samples"),
                       seed=section.get("seed", 0))
        detector.model_, detector.method_ = model, section["method"]
        model._check_anomaly_method(detector.method_)
        detector.threshold_ = float(section["threshold"])
        detector.fpr_ = float(section["fpr"])
        detector.decision_scores_ = np.asarray(arrays["calibration_scores"], "float64")
        detector.labels_ = (detector.decision_scores_ > detector.threshold_).astype("int64")
        detector.reference_ = None
        if "reference_mean" in arrays:
            detector.reference_ = LatentReference.from_arrays(
                {k[len("reference_"):]: v for k, v in arrays.items() if k.startswith("reference_")})
        m = section.get("model", {})
        detector.training_ = _Training(source=m.get("source", str(path)), kind=m.get("kind", "pretrained"),
                                       epochs=int(m.get("epochs", 0)), train_images=int(m.get("train_images", 0)),
                                       calibration_images=int(m.get("calibration_images", len(detector.decision_scores_))))
        return detector


def model_kind(spec) -> str:
    """``"fresh"`` for a variant key or preset (a model to train), ``"pretrained"`` for a zoo name, an ``hf://`` spec
    or a folder (a model to load); anything else is refused with the closest names."""
    import keraszoo
    from keraszoo.models import list_presets

    if not isinstance(spec, str) or not spec:
        raise TypeError(f"Detector(model=...) takes a variant or preset name, a zoo name, an hf:// spec, a folder or "
                        f"a keraszoo model; received {type(spec).__name__}.")
    presets = list_presets()
    folder = pathlib.Path(spec).expanduser().is_dir()
    if spec in presets and not folder:
        return "fresh"
    zoo = keraszoo.list_models()
    if spec.startswith("hf://") or folder or spec in zoo:
        return "pretrained"
    close = difflib.get_close_matches(spec, list(presets) + list(zoo), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"Unknown model {spec!r}.{hint} Give a variant or preset to train ({', '.join(sorted(presets)[:6])}"
                     f", ...), a zoo name (keraszoo list), hf://org/repo or a save_pretrained folder.")


def is_detector_folder(path) -> bool:
    """Whether ``path`` holds a saved detector (its metadata has an ``anomaly`` section; nothing is verified)."""
    try:
        meta = json.loads((pathlib.Path(path) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and isinstance(meta.get("anomaly"), dict)


def _as_images(x):
    """Images as an array: uint8 0..255 scaled to float32 [0, 1]; floats as they are (the model checks them)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    return x
