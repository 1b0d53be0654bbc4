"""The L_total consistency check of an experiment's runs.

For every line of ``results.jsonl``:

(a) **history**: at every epoch (and every ``val_`` epoch), the logged
    ``total_loss`` against ``reconstruction_loss + sum(w * term)`` and Keras' ``loss``
    against ``total_loss``. Tolerance :data:`HISTORY_RTOL` relative to
    ``|reconstruction_loss| + sum |w * term|``: every logged value is a float32 running
    mean over an epoch's steps, whose rounding stays far below it. The weights are those
    the results line records (``loss_weights``, ``loss_weight_metrics``:
    :func:`loss_weights_of`), so (a) reruns from ``results.jsonl`` alone; an older line
    without them takes the saved model's :meth:`~keraszoo.models.BaseAutoEncoder.loss_weights`,
    else those of the model its ``params`` build. When both the line and the saved model
    are at hand, the two must agree.
(b) **test**: each loss term the run reports on the test split, recomputed from the
    saved weights by the model's own NumPy reference,
    :meth:`~keraszoo.models.BaseAutoEncoder.reference_terms` (float64, the forward pass of
    :mod:`keraszoo.models.reference`), on the same first-N images. Deterministic terms must
    agree to :data:`TEST_RTOL` relative; stochastic ones (a reparameterized draw, prior draws)
    within :data:`MC_SIGMAS` standard errors of the difference of the two Monte-Carlo estimates
    (the run's one draw per image against ``mc_samples`` NumPy draws per image).

A model without a NumPy reference (or a layer the NumPy forward pass cannot compute) is
reported as "not checked: <reason>" and fails the check; so does a term the run reports
that its reference does not recompute. (b) is *not run* (``RunCheck.test_not_run``, not a
failure) when the report is rebuilt from ``results.jsonl`` without the run folders; a
classical reference (PCA, the linear autoencoder: no saved model, one term) is not checked.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from keraszoo.models.reference import UnsupportedLayer
from keraszoo.models.reference_estimates import Estimate
from keraszoo.models.reference_estimates import ReferenceContext

#: (a): |total - (rec + sum w*term)| <= HISTORY_RTOL * (|rec| + sum |w*term|).
HISTORY_RTOL = 1e-5
#: (b), deterministic terms: |reported - numpy| <= TEST_RTOL * |numpy| + TEST_ATOL.
TEST_RTOL = 1e-4
TEST_ATOL = 1e-6
#: (b), stochastic terms: |reported - numpy| <= MC_SIGMAS * standard error (+ the deterministic tolerance).
MC_SIGMAS = 4.0
#: NumPy draws per image (or per batch) of a stochastic term. The run's own value is one draw per unit, so the
#: difference's standard error is ``sqrt(1 + 1/S)`` times the run's: 4 draws leave the tolerance 8 % wider than 16
#: would, at a quarter of the decoder passes (a CIFAR-10 VAE on 2,000 test images: 21-31 s against 86-130 s).
DEFAULT_MC_SAMPLES = 4


# ----------------------------------------------------------------- results
@dataclasses.dataclass
class TermCheck:
    name: str
    reported: float
    recomputed: float
    tolerance: float
    stochastic: bool
    samples: int = 0

    @property
    def error(self):
        return abs(self.reported - self.recomputed)

    @property
    def rel_error(self):
        return self.error / max(abs(self.recomputed), 1e-12)

    @property
    def ok(self):
        return bool(np.isfinite(self.reported) and self.error <= self.tolerance)


@dataclasses.dataclass(frozen=True)
class HistoryPoint:
    """One logged epoch of (a): ``logged`` total_loss and ``recomputed`` = reconstruction + Σ w·term (``prefix``:
    ``""`` train, ``"val_"`` validation)."""

    prefix: str
    epoch: int
    logged: float
    recomputed: float


@dataclasses.dataclass
class RunCheck:
    run_id: str
    variant: str
    history_ok: bool = False
    history_max_rel: float = float("nan")
    history_problems: list = dataclasses.field(default_factory=list)
    terms: list = dataclasses.field(default_factory=list)
    test_problems: list = dataclasses.field(default_factory=list)
    mc_samples: int = 0
    #: why (b) was not run (no saved model here), ``None`` when it ran: not a failure
    test_not_run: str | None = None
    #: a classical reference: nothing to check (no saved model, one term)
    not_applicable: str | None = None
    history_points: list = dataclasses.field(default_factory=list)
    #: where (a)'s weights came from ("results line", "saved model", "model built from params")
    weights_source: str = ""

    @property
    def test_ok(self):
        if self.not_applicable or (self.test_not_run and not self.test_problems):
            return True
        return not self.test_problems and bool(self.terms) and all(t.ok for t in self.terms)

    @property
    def test_max_rel(self):
        return max((t.rel_error for t in self.terms), default=float("nan"))

    @property
    def ok(self):
        return bool(self.not_applicable) or (self.history_ok and self.test_ok)

    def problems(self):
        out = list(self.history_problems) + list(self.test_problems)
        out += [f"test {t.name}: reported {t.reported:.6g}, NumPy {t.recomputed:.6g} (|diff| {t.error:.3g} > {t.tolerance:.3g})"
                for t in self.terms if not t.ok]
        return out


# ----------------------------------------------------------------- (a) history
def check_history(history: dict, weights: dict, weight_metrics: dict | None = None):
    """``(ok, max_rel, problems)`` of check (a) on a run's ``history`` ({term: [per-epoch values]}).

    ``weight_metrics`` ({term: metric}, the model's ``loss_weight_metrics``): terms whose weight in an
    epoch is that epoch's logged ``metric`` (a warm-up schedule) rather than ``weights[term]``.
    """
    ok, worst, problems, _ = history_check(history, weights, weight_metrics)
    return ok, worst, problems


def history_check(history: dict, weights: dict, weight_metrics: dict | None = None):
    """``(ok, max_rel, problems, points)``: :func:`check_history` and its :class:`HistoryPoint` per logged epoch."""
    weight_metrics = weight_metrics or {}
    problems, worst, points = [], 0.0, []
    prefixes = [p for p in ("", "val_") if f"{p}total_loss" in history]
    if not prefixes:
        return False, float("nan"), ["history has no total_loss"], []
    for p in prefixes:
        needed = [f"{p}reconstruction_loss"] + [f"{p}{k}" for k in weights] + [
            f"{p}{m}" for m in weight_metrics.values()]
        missing = [k for k in needed if k not in history]
        if missing:
            problems.append(f"history lacks {', '.join(missing)} (loss_weights: {weights})")
            continue
        for epoch, total in enumerate(history[f"{p}total_loss"]):
            epoch_weights = {k: history[f"{p}{weight_metrics[k]}"][epoch] if k in weight_metrics else w
                             for k, w in weights.items()}
            values = [total, history[f"{p}reconstruction_loss"][epoch]] + [history[f"{p}{k}"][epoch] for k in weights] + [
                epoch_weights[k] for k in weight_metrics if k in weights]
            if any(v is None or not math.isfinite(v) for v in values):
                problems.append(f"epoch {epoch + 1}: a non-finite logged value among {p}total_loss and its terms: {values}")
                continue
            parts = [history[f"{p}reconstruction_loss"][epoch]] + [
                w * history[f"{p}{k}"][epoch] for k, w in epoch_weights.items()]
            scale = sum(abs(v) for v in parts)
            rel = abs(total - sum(parts)) / max(scale, 1e-12)
            worst = max(worst, rel)
            points.append(HistoryPoint(p, epoch + 1, float(total), float(sum(parts))))
            if not rel <= HISTORY_RTOL:
                problems.append(f"epoch {epoch + 1}: {p}total_loss {total:.7g} != {p}reconstruction_loss + "
                                f"{' + '.join(f'{w:g}*{p}{k}' for k, w in epoch_weights.items()) or '0'} = {sum(parts):.7g} "
                                f"(rel. {rel:.2g} > {HISTORY_RTOL:g})")
        if f"{p}loss" in history:
            for epoch, (loss, total) in enumerate(zip(history[f"{p}loss"], history[f"{p}total_loss"])):
                if loss is None or total is None:
                    continue  # reported above
                rel = abs(loss - total) / max(abs(total), 1e-12)
                worst = max(worst, rel)
                if not rel <= HISTORY_RTOL:
                    problems.append(f"epoch {epoch + 1}: {p}loss {loss:.7g} != {p}total_loss {total:.7g}")
    return not problems, worst, problems, points


# ----------------------------------------------------------------- (b) test
def logged_terms(model):
    """The names a model logs as loss-term metrics (its trackers)."""
    return [t.name for t in model.loss_trackers]


def check_test(model, test: dict, x, y, *, batch_size, mc_samples=DEFAULT_MC_SAMPLES, seed=0):
    """``(terms, problems)`` of check (b): every logged term of ``test`` recomputed by ``model.reference_terms`` on ``x``."""
    reported = {k: test[k] for k in logged_terms(model) if k in test}
    if "total_loss" not in reported:
        return [], [f"not checked: the run's test results hold no total_loss (they hold {', '.join(sorted(test)) or 'nothing'})"]
    ctx = ReferenceContext(batch_size=int(batch_size), mc_samples=int(mc_samples), rng=np.random.default_rng(seed))
    try:
        estimates = dict(model.reference_terms(np.asarray(x, dtype="float64"), y, ctx))
    except NotImplementedError as err:  # the base class's: "<Class> has no NumPy reference (reference_terms)"
        return [], [f"not checked: {err or f'{type(model).__name__}.reference_terms is not implemented'}"]
    except UnsupportedLayer as err:
        return [], [f"not checked: the NumPy forward pass cannot compute {err}"]
    # A scheduled weight's logged metric (a KL warm-up's kl_weight) is, outside training, the model's weight.
    weights = model.loss_weights()
    for term, metric in model.loss_weight_metrics().items():
        estimates.setdefault(metric, Estimate(float(weights[term])))
    terms, problems = [], []
    for name, value in reported.items():
        est = estimates.get(name)
        if est is None:
            problems.append(f"not checked: test {name} has no NumPy recomputation")
            continue
        tol = TEST_RTOL * abs(est.value) + TEST_ATOL + (MC_SIGMAS * est.se if est.se is not None else 0.0)
        terms.append(TermCheck(name, float(value), est.value, tol, est.se is not None, est.samples))
    return terms, problems


# ----------------------------------------------------------------- a run, a results file
def test_images(record, data_dir=None):
    """``(x, y)``: the first ``eval.num_examples`` images of the run's evaluation split, as it evaluated them."""
    from keraszoo import data

    ev = record["eval"]
    source = record.get("params", {}).get("data_source") or "auto"
    x, y = data.load_arrays(record["dataset"], ev["split"], source=source, data_dir=data_dir,
                            binarize=data.evaluation_binarize(ev.get("binarize")))
    n = int(ev["num_examples"])
    if len(x) < n:
        raise ValueError(f"run {record['run_id']}: evaluated on {n} images of {record['dataset']} {ev['split']}; "
                         f"only {len(x)} are available here.")
    return x[:n], y[:n]


def _eval_batch_size(record, results_dir):
    """The batch size the run's test terms were evaluated with (batch-level terms depend on it): its recipe's."""
    import json

    meta = pathlib.Path(results_dir) / record["model_dir"] / "metadata.json"
    try:
        args = json.loads(meta.read_text())["recipe"]["args"]
        return int(args["eval_batch_size"])
    except (OSError, KeyError, TypeError, ValueError):
        return int((record.get("params") or {}).get("eval_batch_size") or 500)


def loss_weights_of(record, model=None, build=None):
    """``(weights, weight_metrics, source)`` of (a) for a results line.

    The line's ``loss_weights`` (and ``loss_weight_metrics``: the terms whose weight is a logged schedule) when it
    records them; else those of ``model`` (the saved model, when it loads); else those of ``build(record)`` (a model
    built untrained from the line's ``params``). ``None`` weights: none of these is available.
    """
    recorded = record.get("loss_weights")
    candidates = [("saved model", lambda: model)] if model is not None else []
    if build is not None:
        candidates.append(("model built from params", lambda: build(record)))

    def from_models():
        for source, get in candidates:
            try:
                found = get()
                return found, source
            except Exception:  # noqa: BLE001 - the next source
                continue
        return None, None

    if isinstance(recorded, dict):
        weights = {str(k): float(v) for k, v in recorded.items()}
        metrics = record.get("loss_weight_metrics")
        if isinstance(metrics, dict):
            return weights, {str(k): str(v) for k, v in metrics.items()}, "results line"
        found, _ = from_models()  # an older line: the schedules are the model's
        return weights, (dict(found.loss_weight_metrics()) if found is not None else {}), "results line"
    found, source = from_models()
    if found is None:
        return None, {}, "none"
    return dict(found.loss_weights()), dict(found.loss_weight_metrics()), source


def check_record(record, model=None, build=None, *, mc_samples=0) -> RunCheck:
    """(a) of one results line, from the line alone (see :func:`loss_weights_of`); (b) is left to :func:`check_run`.

    A classical reference's line (``kind == "classical"``) is not applicable: it has no saved model and one term.
    """
    out = RunCheck(str(record.get("run_id")), str(record.get("variant")), mc_samples=mc_samples)
    if record.get("kind") == "classical":
        out.not_applicable = "a classical reference: no saved model, one term (its squared error)"
        out.history_ok = True
        return out
    weights, metrics, out.weights_source = loss_weights_of(record, model, build)
    if weights is None:
        out.history_problems.append("not checked: the line records no loss_weights and no model gives them")
        return out
    if model is not None and out.weights_source == "results line":
        saved = {k: float(v) for k, v in model.loss_weights().items()}
        if set(saved) != set(weights) or any(abs(saved[k] - weights[k]) > 1e-12 * max(1.0, abs(saved[k]))
                                              for k in saved):
            out.history_problems.append(f"the line's loss_weights {weights} differ from the saved model's {saved}")
    ok, out.history_max_rel, problems, out.history_points = history_check(record.get("history") or {}, weights,
                                                                          metrics)
    out.history_problems += problems
    out.history_ok = ok and not out.history_problems
    return out


def check_run(record, results_dir, *, data_dir=None, mc_samples=DEFAULT_MC_SAMPLES, images=None, model=None):
    """A :class:`RunCheck` of one results line: (a) and (b).

    ``images``: ``(x, y)`` to use instead of loading the split; ``model``: the run's saved model, already
    loaded (by the report), instead of loading it from ``results_dir / record["model_dir"]``.
    """
    import keraszoo

    if record.get("kind") == "classical":
        return check_record(record, mc_samples=mc_samples)
    if model is None:
        try:
            model = keraszoo.load(str(pathlib.Path(results_dir) / record["model_dir"]))
        except Exception as err:  # noqa: BLE001 - reported in the table
            out = RunCheck(str(record.get("run_id")), str(record.get("variant")), mc_samples=mc_samples)
            out.history_problems.append(f"not checked: the saved model does not load ({err})")
            return out
    out = check_record(record, model, mc_samples=mc_samples)
    x, y = images if images is not None else test_images(record, data_dir)
    batch_size = _eval_batch_size(record, results_dir)
    out.terms, out.test_problems = check_test(model, record.get("test") or {}, x, y,
                                              batch_size=batch_size, mc_samples=mc_samples)
    return out
