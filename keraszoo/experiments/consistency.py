"""The L_total consistency check of an experiment's runs.

For every line of ``results.jsonl``:

(a) **history**: at every epoch (and every ``val_`` epoch), the logged
    ``total_loss`` against ``reconstruction_loss + sum(w * term)`` with the
    weights of the saved model's :meth:`~keraszoo.models.BaseAutoEncoder.loss_weights`,
    and Keras' ``loss`` against ``total_loss``. Tolerance :data:`HISTORY_RTOL`
    relative to ``|reconstruction_loss| + sum |w * term|``: every logged value is a
    float32 running mean over an epoch's steps, whose rounding stays far below it.
(b) **test**: each loss term the run reports on the test split, recomputed from the
    saved weights by the NumPy implementation of :mod:`keraszoo.experiments.reference`
    (its own forward pass) on the same first-N images. Deterministic terms must agree to
    :data:`TEST_RTOL` relative; stochastic ones (a reparameterized draw, prior draws) within
    :data:`MC_SIGMAS` standard errors of the difference of the two Monte-Carlo estimates
    (the run's one draw per image against ``mc_samples`` NumPy draws per image).

A variant (or a layer) the NumPy side cannot compute is reported as "not checked:
<reason>" and fails the check; so does a term the run reports that nothing recomputes.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from keraszoo.experiments import reference as ref

#: (a): |total - (rec + sum w*term)| <= HISTORY_RTOL * (|rec| + sum |w*term|).
HISTORY_RTOL = 1e-5
#: (b), deterministic terms: |reported - numpy| <= TEST_RTOL * |numpy| + TEST_ATOL.
TEST_RTOL = 1e-4
TEST_ATOL = 1e-6
#: (b), stochastic terms: |reported - numpy| <= MC_SIGMAS * standard error (+ the deterministic tolerance).
MC_SIGMAS = 4.0
#: NumPy draws per image (or per batch) of a stochastic term.
DEFAULT_MC_SAMPLES = 16


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

    @property
    def test_ok(self):
        return not self.test_problems and bool(self.terms) and all(t.ok for t in self.terms)

    @property
    def test_max_rel(self):
        return max((t.rel_error for t in self.terms), default=float("nan"))

    @property
    def ok(self):
        return self.history_ok and self.test_ok

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
    weight_metrics = weight_metrics or {}
    problems, worst = [], 0.0
    prefixes = [p for p in ("", "val_") if f"{p}total_loss" in history]
    if not prefixes:
        return False, float("nan"), ["history has no total_loss"]
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
    return not problems, worst, problems


# ----------------------------------------------------------------- Monte-Carlo estimates
@dataclasses.dataclass
class Estimate:
    """A recomputed term: a value, and for a stochastic one the standard error of reported - value."""

    value: float
    se: float | None = None
    samples: int = 0


def deterministic(per_unit, unit_weights=None):
    per_unit = np.asarray(per_unit, dtype="float64")
    w = np.full(len(per_unit), 1.0 / len(per_unit)) if unit_weights is None else np.asarray(unit_weights)
    return Estimate(float(np.sum(w * per_unit)))


def monte_carlo(draws, unit_weights=None):
    """``draws``: (units, S) values of a term per unit (image or batch); the run's value is one draw per unit.

    Its variance is ``sum w_u^2 var_u``; the NumPy mean of S draws has ``1/S`` of it: the difference has
    ``(1 + 1/S) sum w_u^2 var_u``.
    """
    draws = np.asarray(draws, dtype="float64")
    units, s = draws.shape
    w = np.full(units, 1.0 / units) if unit_weights is None else np.asarray(unit_weights)
    var = draws.var(axis=1, ddof=1) if s > 1 else np.zeros(units)
    return Estimate(float(np.sum(w * draws.mean(1))), float(math.sqrt((1 + 1 / s) * np.sum(w**2 * var))), s)


def _batches(n, batch_size):
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


# ----------------------------------------------------------------- the variants' terms in NumPy
def _reconstruction(model, x, logits):
    if model.reconstruction_loss == "bce":
        return ref.np_bce(x, logits)
    mean = ref.np_sigmoid(logits)
    if model.reconstruction_loss == "discretized_logistic":  # the VAE family's, with its learned scales
        return ref.np_discretized_logistic_nll(x, mean, np.asarray(model.decoder_log_scale))
    if hasattr(model, "decoder_std"):  # the VAE family's Gaussian decoder
        return ref.np_gaussian_nll(x, mean, math.log(model.decoder_std))
    return ref.np_squared_error(x, mean)


def _autoencoder(model, x, y, ctx):
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, ref.np_forward(model.encoder, x)))
    return {"reconstruction_loss": deterministic(rec), "total_loss": deterministic(rec)}


def _sparse(model, x, y, ctx):
    h = ref.np_forward(model.encoder, x)
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, h))
    n, parts = len(x), _batches(len(x), ctx["batch_size"])
    if model.sparsity == "kl":
        per_batch = np.array([ref.np_kl_sparsity(h[b], model.sparsity_target) for b in parts])
        sparsity = deterministic(per_batch, [(b.stop - b.start) / n for b in parts])
    else:
        sparsity = deterministic(np.abs(h).reshape(n, -1).sum(1))
    return {"reconstruction_loss": deterministic(rec), "sparsity_loss": sparsity,
            "mean_activation": deterministic(h.reshape(n, -1).mean(1)),
            "total_loss": Estimate(deterministic(rec).value + model.sparsity_weight * sparsity.value)}


def _contractive(model, x, y, ctx):
    # in chunks: the reverse pass holds latent_dim cotangents of every image
    chunks = [ref.np_jacobian_frobenius_sq(model.encoder, x[b]) for b in _batches(len(x), 256)]
    h, jac_sq = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, h))
    return {"reconstruction_loss": deterministic(rec), "contractive_loss": deterministic(jac_sq),
            "total_loss": deterministic(rec + model.contractive_weight * jac_sq)}


def _gaussian_posterior(params):
    mean, log_var = np.split(params, 2, axis=-1)
    return mean, log_var


def _vae_family(model, x, encoder_input, decode, ctx):
    mean, log_var = _gaussian_posterior(ref.np_forward(model.encoder, encoder_input))
    kl = ref.np_kl_std_normal(mean, log_var)
    s = ctx["mc_samples"]
    rec = np.empty((len(x), s))
    for k in range(s):
        z = mean + np.exp(0.5 * log_var) * ctx["rng"].standard_normal(mean.shape)
        rec[:, k] = _reconstruction(model, x, decode(z))
    return {"reconstruction_loss": monte_carlo(rec), "kl_loss": deterministic(kl),
            "total_loss": monte_carlo(rec + model.beta * kl[:, None])}


def _vae(model, x, y, ctx):
    return _vae_family(model, x, x, lambda z: ref.np_forward(model.decoder, z), ctx)


def _cvae(model, x, y, ctx):
    c = np.eye(model.num_classes)[np.asarray(y, dtype="int64")]
    return _vae_family(model, x, [x, c], lambda z: ref.np_forward(model.decoder, [z, c]), ctx)


def _wae(model, x, y, ctx):
    z = ref.np_forward(model.encoder, x)
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, z))
    n, parts, s = len(x), _batches(len(x), ctx["batch_size"]), ctx["mc_samples"]
    mmd = np.array([[ref.np_imq_mmd(z[b], ctx["rng"].standard_normal(z[b].shape), model.kernel_constant,
                                    model.kernel_scales) for _ in range(s)] for b in parts])
    w = [(b.stop - b.start) / n for b in parts]
    return {"reconstruction_loss": deterministic(rec), "mmd_loss": monte_carlo(mmd, w),
            "total_loss": monte_carlo(deterministic(rec).value + model.mmd_weight * mmd, w)}


def _aae(model, x, y, ctx):
    z = ref.np_forward(model.encoder, x)
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, z))
    d_fake = ref.np_forward(model.discriminator, z)[:, 0]
    gen = ref.np_softplus(-d_fake)
    s = ctx["mc_samples"]
    disc = np.empty((len(x), s))
    means = model.mixture_means().astype("float64")
    for k in range(s):
        prior = model.prior_std * ctx["rng"].standard_normal(z.shape)
        if model.prior == "mixture":
            prior = prior + means[ctx["rng"].integers(0, model.num_components, len(x))]
        d_real = ref.np_forward(model.discriminator, prior)[:, 0]
        disc[:, k] = 0.5 * (ref.np_softplus(-d_real) + ref.np_softplus(d_fake))
    return {"reconstruction_loss": deterministic(rec), "generator_loss": deterministic(gen),
            "discriminator_loss": monte_carlo(disc), "total_loss": deterministic(rec + model.adversarial_weight * gen)}


def _vqvae(model, x, y, ctx):
    z_e = ref.np_forward(model.encoder, x)
    codebook = np.asarray(model.quantizer.codebook.numpy(), dtype="float64")
    flat = z_e.reshape(-1, codebook.shape[1])
    distances = (flat**2).sum(1)[:, None] - 2 * flat @ codebook.T + (codebook**2).sum(1)[None, :]
    indices = distances.argmin(1)
    z_q = codebook[indices].reshape(z_e.shape)
    rec = _reconstruction(model, x, ref.np_forward(model.decoder, z_q))
    commitment = ref.per_example_sum((z_e - z_q) ** 2)
    n, parts = len(x), _batches(len(x), ctx["batch_size"])
    per_image = indices.reshape(n, -1)
    perplexity, usage = [], []
    for b in parts:
        counts = np.bincount(per_image[b].ravel(), minlength=model.num_embeddings).astype("float64")
        p = counts / max(counts.sum(), 1.0)
        perplexity.append(np.exp(-np.sum(p * np.log(np.maximum(p, 1e-12)))))
        usage.append(np.mean(counts > 0))
    w = [(b.stop - b.start) / n for b in parts]
    out = {"reconstruction_loss": deterministic(rec), "commitment_loss": deterministic(commitment),
           "perplexity": deterministic(perplexity, w), "usage": deterministic(usage, w)}
    total = rec + model.commitment_weight * commitment
    if model.codebook_update == "loss":
        out["codebook_loss"] = deterministic(commitment)  # the same squared distance, the gradient differs
        total = total + commitment
    out["total_loss"] = deterministic(total)
    return out


def _bounded(params, bound=20.0):
    mean, log_var = _gaussian_posterior(params)
    return mean, np.clip(log_var, -bound, bound)


def _hierarchy_draw(model, x, h, rng):
    """One draw of ``(z_1, [kl_1..kl_L], log q(z|x), log p(z))`` per image, ladder or bottom-up (HierarchicalVAE)."""
    def sample(mean, log_var):
        return mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)

    if model.inference == "bottom_up":
        mean, log_var = _bounded(ref.np_forward(model.posterior_heads[0], h))
        zs, posteriors = [], []
        for i in range(len(model.latent_dims)):
            if i > 0:
                mean, log_var = _bounded(ref.np_forward(model.bottom_up[i - 1], zs[-1]))
            zs.append(sample(mean, log_var))
            posteriors.append((mean, log_var))
        mean, log_var = posteriors[-1]
        kls = [ref.np_kl_std_normal(mean, log_var)]
        log_q, log_p = ref.np_log_normal(zs[-1], mean, log_var), ref.np_standard_normal_log_prob(zs[-1])
        for i in reversed(range(len(zs) - 1)):
            mean_p, log_var_p = _bounded(ref.np_forward(model.top_down_priors[i], zs[i + 1]))
            mean, log_var = posteriors[i]
            log_p_i = ref.np_log_normal(zs[i], mean_p, log_var_p)
            kls.insert(0, -ref.np_gaussian_entropy(log_var) - log_p_i)
            log_q, log_p = log_q + ref.np_log_normal(zs[i], mean, log_var), log_p + log_p_i
        return zs[0], kls, log_q, log_p
    params = []
    for i, head in enumerate(model.posterior_heads):
        if i > 0:
            h = ref.np_forward(model.bottom_up[i - 1], h)
        params.append(_gaussian_posterior(ref.np_forward(head, h)))
    mean, log_var = params[-1]
    z = sample(mean, log_var)
    kls = [ref.np_kl_std_normal(mean, log_var)]
    for i in reversed(range(len(params) - 1)):
        mean_p, log_var_p = _gaussian_posterior(ref.np_forward(model.top_down_priors[i], z))
        mean_h, log_var_h = params[i]
        log_var_q = -np.logaddexp(-log_var_h, -log_var_p)
        mean_q = (mean_h * np.exp(-log_var_h) + mean_p * np.exp(-log_var_p)) * np.exp(log_var_q)
        z = sample(mean_q, log_var_q)
        kls.insert(0, ref.np_kl_gaussians(mean_q, log_var_q, mean_p, log_var_p))
    return z, kls, None, None


def _hvae(model, x, y, ctx):
    h = ref.np_forward(model.encoder, x)
    draws = {}
    for _ in range(ctx["mc_samples"]):
        z, kls, _, _ = _hierarchy_draw(model, x, h, ctx["rng"])
        rec = _reconstruction(model, x, ref.np_forward(model.decoder, z))
        kl = sum(kls[1:], kls[0])
        values = {"reconstruction_loss": rec, "kl_loss": kl, "total_loss": rec + model.beta * kl}
        values.update({f"kl_loss_{i + 1}": v for i, v in enumerate(kls)})
        for name, v in values.items():
            draws.setdefault(name, []).append(v)
    return {name: monte_carlo(np.stack(v, axis=1)) for name, v in draws.items()}


def _iwae(model, x, y, ctx):
    h = ref.np_forward(model.encoder, x)
    k = model.num_samples
    draws = {}
    for _ in range(ctx["mc_samples"]):
        log_w, log_px, log_pq = [], [], []
        for _ in range(k):  # the run's k importance samples per image
            z, _, log_q, log_p = _hierarchy_draw(model, x, h, ctx["rng"])
            lpx = -_reconstruction(model, x, ref.np_forward(model.decoder, z))
            log_w.append(lpx + log_p - log_q)
            log_px.append(lpx)
            log_pq.append(log_q - log_p)
        bound = -ref.np_log_mean_exp(np.stack(log_w, 1), axis=1)
        rec, kl = -np.mean(log_px, axis=0), np.mean(log_pq, axis=0)
        for name, v in (("reconstruction_loss", rec), ("kl_loss", kl), ("iwae_gap", bound - rec - kl),
                        ("iwae_bound", bound), ("total_loss", bound)):
            draws.setdefault(name, []).append(v)
    return {name: monte_carlo(np.stack(v, axis=1)) for name, v in draws.items()}


#: variant key -> fn(model, x, labels, ctx) -> {term: Estimate}; ``ctx``: batch_size, mc_samples, rng.
REFERENCES = {
    "ae": _autoencoder,
    "dae": _autoencoder,  # evaluation sees clean inputs: no corruption
    "sae": _sparse,
    "cae": _contractive,
    "vae": _vae,
    "cvae": _cvae,
    "wae": _wae,
    "aae": _aae,
    "vqvae": _vqvae,
    "hvae": _hvae,
    "iwae": _iwae,
}


def logged_terms(model):
    """The names a model logs as loss-term metrics (its trackers)."""
    return [t.name for t in model.loss_trackers]


def check_test(model, variant, test: dict, x, y, *, batch_size, mc_samples=DEFAULT_MC_SAMPLES, seed=0):
    """``(terms, problems)`` of check (b): every logged term of ``test`` recomputed in NumPy on ``x``."""
    fn = REFERENCES.get(variant)
    if fn is None:
        return [], [f"not checked: no NumPy reference for variant {variant!r} (known: {', '.join(sorted(REFERENCES))})"]
    reported = {k: test[k] for k in logged_terms(model) if k in test}
    if "total_loss" not in reported:
        return [], [f"not checked: the run's test results hold no total_loss (they hold {', '.join(sorted(test)) or 'nothing'})"]
    ctx = {"batch_size": int(batch_size), "mc_samples": int(mc_samples), "rng": np.random.default_rng(seed)}
    try:
        estimates = fn(model, np.asarray(x, dtype="float64"), y, ctx)
    except ref.UnsupportedLayer as err:
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
    binarize = {"none": None, "dynamic": "static"}.get(ev.get("binarize"), ev.get("binarize"))
    source = record.get("params", {}).get("data_source") or "auto"
    x, y = data.load_arrays(record["dataset"], ev["split"], source=source, data_dir=data_dir, binarize=binarize)
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


def check_run(record, results_dir, *, data_dir=None, mc_samples=DEFAULT_MC_SAMPLES, images=None):
    """A :class:`RunCheck` of one results line (``images``: ``(x, y)`` to use instead of loading the split)."""
    import keraszoo

    out = RunCheck(str(record.get("run_id")), str(record.get("variant")), mc_samples=mc_samples)
    try:
        model = keraszoo.load(str(pathlib.Path(results_dir) / record["model_dir"]))
    except Exception as err:  # noqa: BLE001 - reported in the table
        out.history_problems.append(f"not checked: the saved model does not load ({err})")
        return out
    out.history_ok, out.history_max_rel, out.history_problems = check_history(
        record.get("history") or {}, model.loss_weights(), model.loss_weight_metrics())
    x, y = images if images is not None else test_images(record, data_dir)
    batch_size = _eval_batch_size(record, results_dir)
    out.terms, out.test_problems = check_test(model, out.variant, record.get("test") or {}, x, y,
                                              batch_size=batch_size, mc_samples=mc_samples)
    return out
