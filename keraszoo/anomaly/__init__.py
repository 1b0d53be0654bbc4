"""Anomaly and out-of-distribution detection with keraszoo's autoencoders.

* every model scores images: ``model.anomaly_score(x, method=None)``, higher = more anomalous
  (:mod:`keraszoo.models.anomaly_scores`; the methods a variant computes are its ``anomaly_methods``);
* :class:`Detector` (:mod:`keraszoo.anomaly.detector`): a detector for one's own images on any keraszoo
  model, calibrated to a false-positive rate, with scikit-learn's and PyOD's API, saved and loaded verified;
  ``keraszoo anomaly fit`` / ``keraszoo anomaly score`` on the command line;
* :mod:`keraszoo.anomaly.metrics`: AUROC and average precision (scikit-learn's), per method;
* :mod:`keraszoo.anomaly.baselines`: the classical one-class detectors the benchmark sets beside them;
* :mod:`keraszoo.anomaly.ood`: out-of-distribution detection with the zoo's likelihood models, the known
  failure of likelihoods (Nalisnick et al., 2019) and the input-complexity correction (Serrà et al., 2020);
* :mod:`keraszoo.anomaly.report`: the one-class study's report (tables, ROC curves, literature).
"""

from keraszoo.anomaly.detector import Detector
from keraszoo.anomaly.detector import NotFittedError
from keraszoo.anomaly.detector import is_detector_folder

__all__ = ["Detector", "NotFittedError", "is_detector_folder"]
