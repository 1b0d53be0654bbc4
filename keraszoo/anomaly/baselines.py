"""The classical one-class detectors the anomaly studies set beside the autoencoders (scikit-learn's own).

Each is fit on a run's normal training images and returns a score, higher = more anomalous, of test
images; the studies plan them as classical references (:mod:`keraszoo.experiments.classical`, ``kind
"anomaly"``) at each normal class and at the study's code size ``k`` (``latent_dim``):

* ``pca_anomaly`` -- the squared reconstruction error ``Σ(x − x̂)²`` of :class:`sklearn.decomposition.PCA`
  with ``k`` components (the linear autoencoder's optimum, docs/theory.md section 4); deterministic;
* ``isolation_forest`` -- :class:`sklearn.ensemble.IsolationForest` (100 trees, the paper's defaults) on the
  pixels, ``−score_samples``; one run per seed;
* ``ocsvm`` -- :class:`sklearn.svm.OneClassSVM` (RBF kernel, ``gamma="scale"``, ``ν = 0.1``) on the
  standardized ``k`` principal components, ``−score_samples``; deterministic;
* ``kde`` -- :class:`sklearn.neighbors.KernelDensity` (Gaussian kernel, bandwidth by Scott's rule) on the
  whitened ``k`` principal components, the negative log-density; deterministic.

* ``pyod_autoencoder`` -- PyOD's ``AutoEncoder`` with its defaults, opt-in (add it to a study spec's
  ``classical`` list) where ``pyod`` and ``torch`` are installed; they are no keraszoo dependencies.

The kernel methods' settings are fixed in advance. Ruff et al.'s OC-SVM chose its kernel width by the AUROC on a
labelled 10 % of the test split and their KDE its bandwidth by 5-fold cross-validation on the training images
(the authors' code, lukasruff/Deep-SVDD: ``src/svm.py``, ``src/kde.py``); these are a floor of what the
methods can do.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["BASELINES", "Baseline"]


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A classical detector: ``fit(x_train, x_val, k, budget, seed) -> (score, history, num_params)``."""

    name: str
    title: str
    deterministic: bool
    score: str  # the name its metrics carry
    fit: object
    #: the study arguments it is fit at: the normal classes, and the code size ``k`` where it uses one.
    over: tuple = ("classes", "latent_dim")


def _flat(x):
    return np.asarray(x, "float64").reshape(len(x), -1)


def _pca(x_train, k, whiten=False):
    """An exact PCA of ``k`` components: the eigenvectors of the pixels' covariance (scikit-learn >= 1.5), which for
    a few thousand images of a few thousand pixels is several times faster than the full SVD (the same subspace)."""
    from sklearn.decomposition import PCA

    k = max(1, min(int(k), x_train.shape[0] - 1, x_train.shape[1]))
    try:
        return PCA(n_components=k, svd_solver="covariance_eigh", whiten=whiten).fit(x_train)
    except ValueError:  # an older scikit-learn: the full SVD
        return PCA(n_components=k, svd_solver="full", whiten=whiten).fit(x_train)


def _fit_pca(x_train, x_val, k, budget, seed):
    del x_val, budget, seed
    pca = _pca(_flat(x_train), k)

    def score(x):
        flat = _flat(x)
        return np.sum((flat - pca.inverse_transform(pca.transform(flat))) ** 2, axis=1)

    return score, {}, int(pca.components_.size + pca.mean_.size)


def _fit_isolation_forest(x_train, x_val, k, budget, seed):
    from sklearn.ensemble import IsolationForest

    del x_val, k, budget  # k: None (the forest is fit at no code size)
    forest = IsolationForest(n_estimators=100, random_state=int(seed), n_jobs=1).fit(_flat(x_train).astype("float32"))

    def score(x):
        return -forest.score_samples(_flat(x).astype("float32"))

    return score, {}, int(sum(tree.tree_.node_count for tree in forest.estimators_))


def _fit_ocsvm(x_train, x_val, k, budget, seed):
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    del x_val, budget, seed
    pca = _pca(_flat(x_train), k)
    scaler = StandardScaler().fit(pca.transform(_flat(x_train)))
    svm = OneClassSVM(kernel="rbf", gamma="scale", nu=0.1).fit(scaler.transform(pca.transform(_flat(x_train))))

    def score(x):
        return -svm.score_samples(scaler.transform(pca.transform(_flat(x))))

    return score, {}, int(svm.support_vectors_.size + pca.components_.size)


def _fit_kde(x_train, x_val, k, budget, seed):
    from sklearn.neighbors import KernelDensity

    del x_val, budget, seed
    pca = _pca(_flat(x_train), k, whiten=True)
    features = pca.transform(_flat(x_train))
    kde = KernelDensity(kernel="gaussian", bandwidth="scott").fit(features)

    def score(x):
        return -kde.score_samples(pca.transform(_flat(x)))

    return score, {}, int(features.size + pca.components_.size)


def _fit_pyod_autoencoder(x_train, x_val, k, budget, seed):
    """PyOD's ``AutoEncoder`` (PyTorch) with its defaults, when ``pyod`` and ``torch`` are installed (never a keraszoo
    dependency): a row to set beside keraszoo's own autoencoders, as the benchmarks set pythae's."""
    del x_val, k, budget
    try:
        from pyod.models.auto_encoder import AutoEncoder
    except ImportError:
        raise ImportError("The pyod_autoencoder baseline needs PyOD 2 and PyTorch (pip install pyod torch); they are "
                          "not keraszoo dependencies: leave it out of the study's classical list.") from None
    try:
        detector = AutoEncoder(random_state=int(seed))
    except TypeError:  # a PyOD without the argument
        detector = AutoEncoder()
    detector.fit(_flat(x_train).astype("float32"))

    def score(x):
        return np.asarray(detector.decision_function(_flat(x).astype("float32")), "float64")

    return score, {}, 0


def pyod_available() -> bool:
    """Whether PyOD and PyTorch are importable (the optional ``pyod_autoencoder`` row)."""
    import importlib.util

    return importlib.util.find_spec("pyod") is not None and importlib.util.find_spec("torch") is not None


#: The classical one-class detectors by name.
BASELINES = (
    Baseline("pca_anomaly", "PCA reconstruction error", True, "pca", _fit_pca),
    Baseline("isolation_forest", "Isolation Forest (pixels)", False, "isolation_forest", _fit_isolation_forest,
             over=("classes",)),
    Baseline("ocsvm", "one-class SVM (RBF, PCA features)", True, "ocsvm", _fit_ocsvm),
    Baseline("kde", "KDE (Gaussian, whitened PCA features)", True, "kde", _fit_kde),
    # optional, opt-in (a study spec's "classical" list): PyOD and PyTorch are no keraszoo dependencies
    Baseline("pyod_autoencoder", "PyOD AutoEncoder (PyTorch; optional)", False, "pyod_autoencoder",
             _fit_pyod_autoencoder, over=("classes",)),
)
