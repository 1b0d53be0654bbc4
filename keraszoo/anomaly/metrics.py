"""One-class metrics of anomaly scores, and the ``anomaly`` probe of the experiment studies.

The one-class protocol of Ruff et al. (2018, "Deep One-Class Classification"): a model trained on the
images of the normal classes scores the whole test split; the images of the normal classes are the
negatives (0), every other image an anomaly, the positives (1). :func:`one_class_metrics` returns, under a
score's name ``<m>``:

* ``anomaly_auroc_<m>``: scikit-learn's ``roc_auc_score`` (0.5: chance);
* ``anomaly_ap_<m>``: scikit-learn's ``average_precision_score`` with the anomalies as the positive class
  (its chance level is their share: 0.9 for one normal class of ten);
* ``anomaly_tpr_<m>_at_<p>``: the share of anomalies flagged at a false-positive rate ``p`` of the normal test
  images (the ROC curve at :data:`FPR_POINTS`, from scikit-learn's ``roc_curve``; the report draws the curves);
* ``anomaly_seconds_<m>``: the seconds the scores took;
* for the default score only (``top=True``): ``anomaly_top_<k>`` and ``anomaly_top_normal_<k>``, the test-split
  indices of the ``k``-th most anomalous image overall and among the normal classes' images (``k = 1 ..``
  :data:`TOP`; the report shows them).

:func:`anomaly_probe` measures every score a trained model declares (``model.anomaly_methods``) this way; the
``latent`` score's Gaussian is fit on the run's own training images (:class:`~keraszoo.experiments.probes.RunInputs`).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["FPR_POINTS", "TOP", "anomaly_probe", "one_class_metrics"]

#: False-positive rates at which the ROC curve is recorded (the share of anomalies flagged there).
FPR_POINTS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: How many of the most anomalous test images a run records (by their index in the test split).
TOP = 8


def _sklearn_metrics():
    try:
        from sklearn import metrics
    except ImportError:  # pragma: no cover - scikit-learn is a dev/experiments dependency
        raise ImportError("The one-class metrics use scikit-learn (roc_auc_score, average_precision_score): "
                          "pip install scikit-learn") from None
    return metrics


def one_class_metrics(scores, labels, normal_classes, name, *, seconds=None, top=False) -> dict:
    """AUROC, average precision and the ROC curve's points of ``scores`` (higher = more anomalous) on images whose
    class ``labels`` are anomalies unless in ``normal_classes``; see the module docstring."""
    metrics = _sklearn_metrics()
    scores = np.asarray(scores, "float64")
    anomalous = (~np.isin(np.asarray(labels), np.asarray(list(normal_classes)))).astype(int)
    if anomalous.min() == anomalous.max():
        raise ValueError(f"The one-class metrics need normal and anomalous test images; the test images are all "
                         f"{'anomalous' if anomalous[0] else 'normal'} for the normal classes {list(normal_classes)}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"The {name!r} scores hold {int(np.sum(~np.isfinite(scores)))} non-finite values.")
    out = {f"anomaly_auroc_{name}": float(metrics.roc_auc_score(anomalous, scores)),
           f"anomaly_ap_{name}": float(metrics.average_precision_score(anomalous, scores))}
    fpr, tpr, _ = metrics.roc_curve(anomalous, scores)
    for p in FPR_POINTS:
        out[f"anomaly_tpr_{name}_at_{p:g}"] = float(np.interp(p, fpr, tpr))
    if seconds is not None:
        out[f"anomaly_seconds_{name}"] = float(seconds)
    if top:
        order = np.argsort(-scores, kind="stable")
        normal_order = order[anomalous[order] == 0]
        for k in range(min(TOP, len(order))):
            out[f"anomaly_top_{k + 1}"] = int(order[k])
        for k in range(min(TOP, len(normal_order))):
            out[f"anomaly_top_normal_{k + 1}"] = int(normal_order[k])
    return out


def anomaly_probe(model, x, y, *, seed, run, methods=None, iwae_samples=100, elbo_samples=10, batch_size=256):
    """The one-class metrics of every anomaly score of ``model`` (or of ``methods``) on the test images ``x``, ``y``.

    The normal classes are the run's (its Recipe's ``classes``); ``run`` gives them and the run's training images
    (for the ``latent`` score's Gaussian).
    """
    normal = run.recipe.classes
    if normal is None:
        raise ValueError("The anomaly probe measures a one-class model: the study must give the normal classes "
                         "(a 'classes' argument, e.g. \"grid\": {\"classes\": [[0], [1], ...]}).")
    declared = tuple(model.anomaly_methods)
    chosen = declared if methods is None else tuple(m for m in methods if m in declared)
    given = model.label_kwargs(None if y is None else np.asarray(y))
    out = {}
    for method in chosen:
        started = time.time()
        if method == "latent":
            x_train, y_train = run.training_images()
            model.fit_anomaly_reference(x_train, **model.label_kwargs(y_train), batch_size=batch_size)
        samples = {"iwae": iwae_samples, "elbo": elbo_samples}.get(method)
        scores = model.anomaly_score(x, method, num_samples=samples, seed=seed, batch_size=batch_size, **given)
        out.update(one_class_metrics(scores, y, normal, method, seconds=time.time() - started,
                                     top=method == model.default_anomaly_method))
    return out
