"""Classical references a study computes beside its autoencoders: PCA and the linear autoencoder, and the
classical one-class detectors of the anomaly studies.

A study's ``classical`` field names them (the latent study: ``["pca", "linear_ae"]``);
:func:`~keraszoo.experiments.planning.plan_runs` plans one run of each at every value of the
study arguments the reference is fit at (its ``over``: the code size ``latent_dim`` for these
two; the normal ``classes`` and the code size for the anomaly detectors), and the sweep
executes them like any run (:func:`execute_classical`): their lines in ``results.jsonl``
carry the same fields, so the report sets them in the same tables and figures.

Both are the theory's reference for the squared error (docs/theory.md, section 4): a
linear autoencoder trained on ``Σ(x − x̂)²`` spans the principal subspace, so its error
approaches PCA's from above, and a nonlinear autoencoder with the same code size
should do at least as well as PCA.

* ``pca`` -- scikit-learn's :class:`~sklearn.decomposition.PCA` (exact SVD) fit on the
  run's training images (the train split less the validation hold-out, as the
  autoencoders train); deterministic, so one run per code size whatever the seeds.
* ``linear_ae`` -- ``x̂ = m + W_dec W_enc (x − m)`` (no bias beyond the training mean
  ``m``, no sigmoid) trained with Keras' Adam on the squared error, early stopping on the
  validation images as the budget says, one run per seed.

The test metrics are those of the autoencoders' ``mse`` runs: ``reconstruction_loss``
(``= total_loss``: the mean over test images of ``Σ(x − x̂)²``), ``mse_per_pixel``,
``psnr_db``, and the k-NN and linear-probe accuracy of the codes.

The anomaly detectors (``kind="anomaly"``: :mod:`keraszoo.anomaly.baselines`, scikit-learn's) are
fit on the run's training images (the study's normal ``classes``, less the validation hold-out,
as the autoencoders train) and score the test split; their metrics are the ``anomaly`` probe's
(:func:`keraszoo.anomaly.metrics.one_class_metrics`: AUROC, average precision, the ROC curve's
points), under the score's name.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

__all__ = ["CLASSICAL", "ClassicalBaseline", "execute_classical"]


@dataclasses.dataclass(frozen=True)
class ClassicalBaseline:
    """A classical reference: its name, its title in tables, whether seeds change it, the study arguments it is
    fit at (one run at every value of each: ``over``) and what it is (``kind``)."""

    name: str
    title: str
    deterministic: bool
    #: ``"reconstruction"``: ``(x_train, x_val, k, budget, seed) -> (encode, decode, history, num_params)``;
    #: ``"anomaly"``: ``(x_train, x_val, k, budget, seed) -> (score, history, num_params)``, ``score(x)`` higher
    #: = more anomalous.
    fit: object
    over: tuple = ("latent_dim",)
    kind: str = "reconstruction"
    #: an anomaly detector's score, the name its metrics carry (``anomaly_auroc_<score>``).
    score: str | None = None


def _flat(x):
    return np.asarray(x, "float64").reshape(len(x), -1)


def _fit_pca(x_train, x_val, k, budget, seed):
    from sklearn.decomposition import PCA

    del x_val, budget, seed
    pca = PCA(n_components=k, svd_solver="full").fit(_flat(x_train))

    def encode(x):
        return pca.transform(_flat(x))

    return encode, pca.inverse_transform, {}, int(pca.components_.size + pca.mean_.size)


def _fit_linear_ae(x_train, x_val, k, budget, seed):
    import keras

    keras.utils.set_random_seed(int(seed))
    train, val = _flat(x_train), _flat(x_val) if x_val is not None else None
    mean = train.mean(0)
    d = train.shape[1]
    inputs = keras.Input((d,))
    code = keras.layers.Dense(k, use_bias=False, name="encoder")(inputs)
    outputs = keras.layers.Dense(d, use_bias=False, name="decoder")(code)
    model = keras.Model(inputs, outputs, name=f"linear_ae_{k}")

    def squared_error(y, y_hat):
        return keras.ops.sum(keras.ops.square(y - y_hat), axis=-1)

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=squared_error)
    callbacks = []
    if val is not None and budget["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=budget["patience"],
                                                       restore_best_weights=True))
    centred = (train - mean).astype("float32")
    validation = None if val is None else ((val - mean).astype("float32"),) * 2
    fit = model.fit(centred, centred, epochs=budget["epochs"], batch_size=budget["batch_size"], shuffle=True,
                    validation_data=validation, callbacks=callbacks, verbose=0)
    encoder = keras.Model(inputs, code)

    def encode(x):
        return np.asarray(encoder.predict((_flat(x) - mean).astype("float32"), batch_size=4096, verbose=0))

    def decode(z):
        w = np.asarray(model.get_layer("decoder").kernel, "float64")
        return np.asarray(z, "float64") @ w + mean

    history = {"total_loss": fit.history["loss"]}
    if "val_loss" in fit.history:
        history["val_total_loss"] = fit.history["val_loss"]
    return encode, decode, history, int(model.count_params())


def _anomaly_baselines():
    from keraszoo.anomaly import baselines

    return {b.name: ClassicalBaseline(b.name, b.title, b.deterministic, b.fit, over=b.over, kind="anomaly",
                                      score=b.score) for b in baselines.BASELINES}


#: The classical references by name (a study's ``classical`` field).
CLASSICAL = {
    "pca": ClassicalBaseline("pca", "PCA", True, _fit_pca),
    "linear_ae": ClassicalBaseline("linear_ae", "linear autoencoder", False, _fit_linear_ae),
    **_anomaly_baselines(),
}


def study_values(study, entries, arg) -> list:
    """The values ``arg`` takes in ``study`` (its ``fixed`` value, and every value of the grid ``entries``), in order."""
    values = [study.fixed[arg]] if arg in study.fixed else []
    for entry in entries:
        values += [v for v in entry.get(arg, []) if v not in values]
    return sorted(values, key=lambda v: (str(type(v)), v))


def check_classical(where, names) -> list:
    """``names`` as a list of known classical references; refuses an unknown one by name."""
    from keraszoo.experiments.study import StudyError
    from keraszoo.experiments.study import _did_you_mean

    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise StudyError(f"{where}: classical must be a list of names ({', '.join(CLASSICAL)}); got {names!r}.")
    for name in names:
        if name not in CLASSICAL:
            raise StudyError(f"{where}: classical: unknown reference {name!r}.{_did_you_mean(name, CLASSICAL)} "
                             f"Known: {', '.join(CLASSICAL)}.")
    return list(names)


def execute_classical(spec, data_dir=None) -> dict:
    """Fit and measure one classical run (a :class:`~keraszoo.experiments.planning.RunSpec` of kind ``classical``).

    Returns its ``results.jsonl`` record (no folder is written: nothing to load later).
    """
    from keraszoo import data
    from keraszoo.evaluation import knn_accuracy
    from keraszoo.evaluation import linear_probe_accuracy
    from keraszoo.training.fitting import hold_out
    from keraszoo.training.train import select_classes

    baseline = CLASSICAL[spec.variant]
    recipe = spec.recipe_fields
    k = int(spec.params["latent_dim"]) if "latent_dim" in spec.params else None
    x, y = data.load_arrays(spec.dataset, "train", source="auto", data_dir=data_dir)
    classes = spec.params.get("classes")
    x, y = select_classes(x, y, None if classes is None else tuple(classes))  # the run's normal classes
    if recipe.get("limit"):
        x, y = x[: recipe["limit"]], y[: recipe["limit"]]
    x_train, x_val = hold_out(x, recipe.get("val_split", 0.0))
    y_train, _ = hold_out(y, recipe.get("val_split", 0.0))
    x_test, y_test = data.load_arrays(spec.dataset, recipe["eval_split"], source="auto", data_dir=data_dir)
    x_train, x_test = np.asarray(x_train, "float32"), np.asarray(x_test, "float32")
    x_val = None if x_val is None else np.asarray(x_val, "float32")
    if x_train.max() > 1.5:  # uint8 archives
        x_train, x_test = x_train / 255.0, x_test / 255.0
        x_val = None if x_val is None else x_val / 255.0
    budget = {"epochs": spec.epochs, "batch_size": recipe.get("batch_size", 128),
              "patience": recipe.get("early_stopping", 0)}
    started = time.time()
    if baseline.kind == "anomaly":
        from keraszoo.anomaly.metrics import one_class_metrics

        score, history, num_params = baseline.fit(x_train, x_val, k, budget, spec.seed)
        seconds = time.time() - started
        scores = score(x_test)
        test = one_class_metrics(scores, np.asarray(y_test), classes, baseline.score,
                                 seconds=time.time() - started - seconds)
        return _record(spec, test, history, num_params, seconds, x_test, likelihood=None, patience=budget["patience"])
    encode, decode, history, num_params = baseline.fit(x_train, x_val, k, budget, spec.seed)
    seconds = time.time() - started
    codes_test = encode(x_test)
    error = np.sum((_flat(x_test) - decode(codes_test)) ** 2, axis=1)
    per_pixel = error / _flat(x_test).shape[1]
    knn_n = spec.evaluation.get("knn_train_examples") or len(x_train)
    codes_train = encode(x_train[:knn_n])
    test = {
        "reconstruction_loss": float(error.mean()),
        "total_loss": float(error.mean()),
        "mse_per_pixel": float(per_pixel.mean()),
        "psnr_db": float(np.mean(10 * np.log10(1.0 / np.maximum(per_pixel, 1e-10)))),
        "knn_accuracy": knn_accuracy(codes_train, y_train[:knn_n], codes_test, y_test),
        "linear_probe_accuracy": linear_probe_accuracy(codes_train, y_train[:knn_n], codes_test, y_test),
    }
    from keraszoo.models.capabilities import SQUARED_ERROR

    return _record(spec, test, history, num_params, seconds, x_test, likelihood=SQUARED_ERROR,
                   patience=budget["patience"])


def _record(spec, test, history, num_params, seconds, x_test, *, likelihood, patience) -> dict:
    """A classical run's ``results.jsonl`` line (the fields of a model run's, ``model_dir`` None)."""
    import datetime

    from keraszoo.experiments.execute import convergence
    from keraszoo.version import __version__

    epochs_run = len(history.get("total_loss", []))
    return {
        "run_id": spec.run_id,
        "study": spec.study,
        "variant": spec.variant,
        "kind": "classical",
        "dataset": spec.dataset,
        "budget": spec.budget,
        "params": spec.params,
        "seed": spec.seed,
        "epochs": spec.epochs if epochs_run else 0,
        **(convergence(history, spec.epochs, patience) if epochs_run else {}),
        "num_params": num_params,
        "train_seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / epochs_run, 3) if epochs_run else None,
        "history": {name: [float(v) for v in values] for name, values in history.items()},
        "test": test,
        "likelihood": likelihood,
        "loss_weights": {},
        "eval": {"split": "test", "num_examples": int(len(x_test)), "binarize": "none"},
        "model_dir": None,
        "keraszoo_version": __version__,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
