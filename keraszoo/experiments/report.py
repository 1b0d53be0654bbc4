"""``keraszoo report DIR -o OUT``: a Markdown report of an experiment's ``results.jsonl``.

For every study in the file: the swept settings; tables of L_total and each of its terms on train (the
last epoch of ``history``) and test, of the other test metrics and of the parameter counts and times;
the figures of :mod:`keraszoo.experiments.figures`; a discussion whose every sentence is computed from
the numbers. Then a "Literature" section (published claims beside the measured numbers, with what
differs) and the consistency check of :mod:`keraszoo.experiments.consistency` for every run. Nothing is
hard-coded: a report regenerated from the same results file is the same report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

from keraszoo.experiments import consistency
from keraszoo.experiments import figures
from keraszoo.experiments.runner import STUDY_FILE
from keraszoo.experiments.studies import STUDIES

#: ``params`` keys that never count as a swept setting (where files live, how often to back up).
NOT_SETTINGS = ("data_dir", "out", "backup_every", "eval_split", "hparam", "verbose")
#: metrics per table of "Other test metrics"
TABLE_COLUMNS = 8


#: the results-line fields the report reads (the runner writes more).
REQUIRED_FIELDS = ("run_id", "study", "variant", "params", "history", "test", "eval", "model_dir")


def read_results(results_dir):
    """The runs of ``results_dir/results.jsonl`` (the runner's reader: the last line per run, a torn tail ignored)."""
    from keraszoo.experiments.results import read_results as read_lines

    path = pathlib.Path(results_dir) / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"No results file: expected {path} (written by `keraszoo experiment ... --out {results_dir}`).")
    runs = read_lines(results_dir)
    for record in runs:
        missing = [k for k in REQUIRED_FIELDS if k not in record]
        if missing:
            raise ValueError(f"{path}: the line of run {record.get('run_id', '?')!r} lacks {', '.join(missing)}; a results "
                             f"line needs {', '.join(REQUIRED_FIELDS)}.")
    if not runs:
        raise ValueError(f"{path} holds no runs.")
    return runs


def _fmt(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------- one study
@dataclasses.dataclass
class Study:
    """The runs of one study and what the figures and tables need of them."""

    name: str
    runs: list
    results_dir: pathlib.Path
    data_dir: object = None
    _models: dict = dataclasses.field(default_factory=dict)
    _images: tuple | None = None
    #: the study's swept settings, kept by a subset of its runs (one group of a plot)
    swept_keys: list | None = None

    @property
    def swept(self):
        """The settings whose values differ between the runs: numeric ones first (the x axis), then the others."""
        if self.swept_keys is not None:
            return self.swept_keys
        keys = sorted({k for r in self.runs for k in r["params"]} - set(NOT_SETTINGS))
        differing = [k for k in keys if len({json.dumps(r["params"].get(k), sort_keys=True) for r in self.runs}) > 1]
        numeric = [k for k in differing if all(isinstance(r["params"].get(k), (int, float)) and not isinstance(
            r["params"].get(k), bool) for r in self.runs)]
        return numeric + [k for k in differing if k not in numeric]

    @property
    def terms(self):
        """L_total, the reconstruction term, then every other logged ``*_loss`` term (train history)."""
        names = []
        for r in self.runs:
            for k in r.get("history", {}):
                if k.endswith("_loss") and not k.startswith("val_") and k not in names:
                    names.append(k)
        head = [k for k in ("total_loss", "reconstruction_loss") if k in names]
        return head + sorted(k for k in names if k not in head)

    def groups(self):
        """Runs by the non-numeric swept settings (variant, reconstruction loss ...): one line per group in plots."""
        swept = self.swept
        numeric = swept[:1] if swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in self.runs) else []
        keys = [k for k in swept if k not in numeric]
        if not numeric:  # a categorical sweep: one line over its values
            return {"": self.runs}
        out = {}
        for r in self.runs:
            out.setdefault(" ".join(f"{r['params'].get(k)}" for k in keys), []).append(r)
        return {g: sorted(rs, key=lambda r: r["params"].get(numeric[0])) for g, rs in out.items()}

    def subset(self, runs):
        return Study(self.name, runs, self.results_dir, self.data_dir, self._models, self._images, self.swept)

    def label(self, r):
        return ", ".join(f"{k}={_fmt(r['params'].get(k))}" for k in self.swept) or r["run_id"]

    def train_value(self, r, term):
        values = r.get("history", {}).get(term) or []
        return float(values[-1]) if values else float("nan")

    def test_value(self, r, term):
        value = r.get("test", {}).get(term)
        return float(value) if isinstance(value, (int, float)) else float("nan")

    def model(self, r):
        if r["run_id"] not in self._models:
            import keraszoo

            self._models[r["run_id"]] = keraszoo.load(str(self.results_dir / r["model_dir"]))
        return self._models[r["run_id"]]

    def likelihood(self, r):
        """What the run's reconstruction_loss measures: comparable only between runs that measure the same."""
        try:
            model = self.model(r)
        except Exception:  # noqa: BLE001 - a model that does not load is reported by the consistency check
            return "unknown"
        if model.reconstruction_loss == "bce":
            return "Bernoulli NLL, nats"
        return "Gaussian NLL, nats" if hasattr(model, "decoder_std") else "squared error"

    def images(self, count):
        """The first ``count`` test images and labels of the study's first run (``(None, None)`` if unavailable)."""
        if self._images is None:
            try:
                self._images = consistency.test_images(self.runs[0], self.data_dir)
            except Exception:  # noqa: BLE001 - the image figures are then left out, and the report says so
                self._images = (None, None)
        x, y = self._images
        return (None, None) if x is None else (x[:count], y[:count])




# ----------------------------------------------------------------- discussion (sentences from numbers)
def _trend(xs, ys):
    pairs = sorted((x, y) for x, y in zip(xs, ys) if math.isfinite(y))
    if len(pairs) < 3:
        return None
    diffs = np.diff([y for _, y in pairs])
    if np.all(diffs > 0):
        return "rises"
    if np.all(diffs < 0):
        return "falls"
    return "is not monotone"


def _extremes(study, runs, term, what, who, edge):
    """The lowest and highest test ``term`` among ``runs``, and whether the lowest sits at the sweep's edge."""
    scored = [(study.test_value(r, term), r) for r in runs if math.isfinite(study.test_value(r, term))]
    if len(scored) < 2:
        return []
    (low, best), (high, worst) = min(scored, key=lambda s: s[0]), max(scored, key=lambda s: s[0])
    out = [f"Lowest test {what}{who}: {study.label(best)} with {low:.4g}, {high - low:.4g} "
           f"({100 * (high - low) / max(abs(high), 1e-12):.1f} %) below the highest, {study.label(worst)} ({high:.4g})."]
    swept = study.swept
    if edge and swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in runs):
        xs = [r["params"].get(swept[0]) for r in runs]
        at = best["params"].get(swept[0])
        if at in (min(xs), max(xs)) and len(set(xs)) > 2:
            out.append(f"The best reconstruction{who} sits at the edge of the sweep ({swept[0]}={_fmt(at)}): "
                       "the next settings to try lie beyond it.")
    return out


#: metrics a run can be strongest or weakest in across a study: name -> +1 (higher is better) or -1.
RANKED = {"psnr_db": 1, "knn_accuracy": 1, "linear_probe_accuracy": 1, "active_units": 1, "seconds_per_epoch": -1,
          "num_params": -1}


def _strengths(study):
    """Per run (studies of 3 runs or more): the metrics of :data:`RANKED` it is best and worst in."""
    if len(study.runs) < 3:
        return []
    best, worst = {}, {}
    for metric, sign in RANKED.items():
        scored = [(sign * v, r["run_id"]) for r in study.runs
                  for v in [r.get(metric) if metric in ("seconds_per_epoch", "num_params") else study.test_value(r, metric)]
                  if isinstance(v, (int, float)) and math.isfinite(v)]
        values = [v for v, _ in scored]
        if len(scored) < 3:
            continue
        # A best or worst shared by several runs (every run has the same size) names none of them.
        if values.count(max(values)) == 1:
            best.setdefault(max(scored)[1], []).append(metric)
        if values.count(min(values)) == 1:
            worst.setdefault(min(scored)[1], []).append(metric)
    out = []
    for r in study.runs:
        parts = ([f"best in {', '.join(best[r['run_id']])}"] if r["run_id"] in best else []) + (
            [f"worst in {', '.join(worst[r['run_id']])}"] if r["run_id"] in worst else [])
        if parts:
            out.append(f"{study.label(r)}: {'; '.join(parts)} (of the {len(study.runs)} runs).")
    return out


def _versus_plain(study, metrics, plain="ae"):
    """Each run's ``metrics`` beside the plain autoencoder's (the baseline run of the study), in per cent."""
    return _versus(study, metrics, lambda r: r["params"].get("model") == plain, "the plain autoencoder's")


def _versus(study, metrics, is_base, base_name, runs=None):
    """Each of ``runs`` (default: all) beside the first run for which ``is_base`` holds, in per cent."""
    base = next((r for r in study.runs if is_base(r)), None)
    if base is None:
        return []
    out = []
    for metric in metrics:
        ref = study.test_value(base, metric)
        if not math.isfinite(ref) or ref == 0:
            continue
        for r in runs if runs is not None else study.runs:
            value = study.test_value(r, metric)
            if r is not base and math.isfinite(value):
                out.append(f"{metric}: {study.label(r)} {value:.4g} against {base_name} {ref:.4g} "
                           f"({100 * (value - ref) / abs(ref):+.1f} %).")
    return out


def _contractive(study):
    """The CAEs beside the plain AE, then beside the CAE without penalty (lambda = 0: the sigmoid code alone)."""
    metrics = ("jacobian_frobenius", "code_shift_relative", "reconstruction_loss")
    caes = [r for r in study.runs if r["params"].get("model") == "cae"]
    return _versus_plain(study, metrics) + _versus(
        study, metrics, lambda r: r in caes and r["params"].get("contractive_weight") == 0,
        "the unpenalized CAE's (lambda = 0)", runs=caes)


def _strongest_noise(study):
    """``denoised_psnr_<noise>_<level>_db`` at the highest test-time level of each noise type the runs report."""
    import re

    levels = {}
    for r in study.runs:
        for key in r.get("test", {}):
            m = re.match(r"denoised_psnr_(?P<noise>[a-z_]+?)_(?P<level>[0-9.e-]+)_db$", key)
            if m and float(m["level"]) >= levels.get(m["noise"], (-1.0, ""))[0]:
                levels[m["noise"]] = (float(m["level"]), key)
    return [key for _, key in sorted(levels.values(), key=lambda v: v[1])]


def _range_of(study, metrics):
    out = []
    for metric in metrics:
        scored = [(study.test_value(r, metric), r) for r in study.runs if math.isfinite(study.test_value(r, metric))]
        if len(scored) >= 2:
            (lo, rlo), (hi, rhi) = min(scored, key=lambda s: s[0]), max(scored, key=lambda s: s[0])
            out.append(f"{metric} ranges from {lo:.4g} ({study.label(rlo)}) to {hi:.4g} ({study.label(rhi)}).")
    return out


#: study name -> extra sentences about what that study asks (a user's study gets the generic ones only).
STUDY_DISCUSSION = {
    "contractive": _contractive,
    "noise": lambda study: _versus_plain(study, _strongest_noise(study)),
    "beta": lambda study: _range_of(study, ("active_units", "kl_loss", "negative_elbo_nats")),
    "sparsity": lambda study: _range_of(study, ("mean_code_activation", "near_zero_code_fraction")),
    "latent": lambda study: _range_of(study, ("knn_accuracy",)),
}


def discussion(study: Study):
    """Sentences computed from the study's numbers."""
    out = []
    swept = study.swept
    for group, runs in study.groups().items():
        who = f" ({group})" if group else ""
        kinds = _by(runs, study.likelihood)
        for term, what in (("reconstruction_loss", "reconstruction error"), ("total_loss", "L_total")):
            for kind, same in sorted(kinds.items()):
                label = f"{what} ({kind}; runs of other likelihoods are not comparable)" if len(kinds) > 1 else what
                out += _extremes(study, same, term, label, who, edge=term == "reconstruction_loss")
        if swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in runs):
            xs = [r["params"].get(swept[0]) for r in runs]
            for term in study.terms:
                trend = _trend(xs, [study.test_value(r, term) for r in runs])
                if trend and trend != "is not monotone":
                    ordered = sorted(runs, key=lambda r: r["params"].get(swept[0]))
                    lo, hi = ordered[0], ordered[-1]
                    out.append(f"Test {term}{who} {trend} with {swept[0]}: {study.test_value(lo, term):.4g} at "
                               f"{_fmt(lo['params'].get(swept[0]))}, {study.test_value(hi, term):.4g} at "
                               f"{_fmt(hi['params'].get(swept[0]))}.")
        for metric in ("psnr_db", "knn_accuracy", "linear_probe_accuracy"):
            scored = [(study.test_value(r, metric), r) for r in runs if math.isfinite(study.test_value(r, metric))]
            if len(scored) >= 2:
                best = max(scored, key=lambda s: s[0])
                out.append(f"Best {metric.replace('_', ' ')}{who}: {study.label(best[1])}, {best[0]:.4g}.")
    out += _strengths(study)
    for sentence in STUDY_DISCUSSION.get(study.name, lambda study: [])(study):
        out.append(sentence)
    timed = [(r.get("seconds_per_epoch"), r) for r in study.runs if isinstance(r.get("seconds_per_epoch"), (int, float))]
    if len(timed) >= 2:
        fast, slow = min(timed, key=lambda t: t[0]), max(timed, key=lambda t: t[0])
        out.append(f"Training took {fast[0]:.3g} s/epoch ({study.label(fast[1])}) to {slow[0]:.3g} s/epoch "
                   f"({study.label(slow[1])}), {slow[0] / max(fast[0], 1e-9):.2g}x.")
    gaps = [(study.test_value(r, "total_loss") - study.train_value(r, "total_loss"), r) for r in study.runs]
    gaps = [g for g in gaps if math.isfinite(g[0])]
    if gaps:
        widest = max(gaps, key=lambda g: abs(g[0]))
        out.append(f"The widest train/test gap of L_total is {widest[0]:+.4g} ({study.label(widest[1])}).")
    return out


# ----------------------------------------------------------------- literature
@dataclasses.dataclass(frozen=True)
class Claim:
    """A published claim beside a measured number: no published number unless it was checked at its source."""

    text: str
    source: str
    measured: str  # the test metric set beside it
    differs: str


#: study name -> the claims of its papers (Literature section); other studies get none.
LITERATURE = {
    "beta": (Claim("Raising β above 1 trades reconstruction quality for a more disentangled, lower-rate code "
                   "(no number is quoted here: none was checked at its source).",
                   "Higgins et al., 2017, https://openreview.net/forum?id=Sy2fzU9gl", "reconstruction_loss",
                   "the paper trains on dSprites/CelebA/chairs with conv networks; here the study's dataset, "
                   "network and budget"),),
    "contractive": (Claim("The contractive penalty makes the code locally invariant (a smaller Jacobian norm) at a "
                          "small cost in reconstruction (claim named, no number quoted).",
                          "Rifai et al., 2011, https://icml.cc/2011/papers/455_icmlpaper.pdf", "reconstruction_loss",
                          "the paper uses one sigmoid layer and its own λ grid and datasets"),),
    "noise": (Claim("Denoising training yields features that reconstruct clean inputs from corrupted ones "
                    "(claim named, no number quoted).", "Vincent et al., 2008, https://doi.org/10.1145/1390156.1390294",
                    "denoised_psnr_db", "the paper stacks layers and reports classification error, not PSNR"),),
    "sparsity": (Claim("A KL penalty toward a small target activation ρ gives sparse hidden units "
                       "(claim named, no number quoted).",
                       "Ng, 2011, https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf",
                       "mean_activation", "the notes use one sigmoid hidden layer on natural-image patches"),),
    "variants": (
        Claim("The importance-weighted bound (k > 1) gives a better test log-likelihood than the VAE's ELBO on MNIST "
              "(Burda et al., Table 1; the paper's own numbers are not quoted here: not checked at the source).",
              "Burda, Grosse & Salakhutdinov, 2016, https://arxiv.org/abs/1509.00519", "iwae_nll_nats",
              "the paper trains far longer, with its own networks and binarized MNIST; here the study's budget "
              "and networks (the IWAE NLL only where the budget evaluates it)"),
        Claim("pythae's reproduced results: IWAE (n_samples=50), binary MNIST, NLL (5000 IS) 86.82 nats against the "
              "reference 87.1; VAE, binary MNIST, NLL (200 IS) 89.78 against the reference 89.9.",
              "pythae (clementchadebec/benchmark_VAE), examples/scripts/reproducibility/README.md", "iwae_nll_nats",
              "binary MNIST and 50 training samples (IWAE) there; here the study's binarization, k, importance "
              "samples (eval.iwae_samples) and budget"),
    ),
    "latent": (Claim("Deep autoencoders with small codes reconstruct better than PCA with as many components "
                     "(claim named, no number quoted).", "Hinton & Salakhutdinov, 2006, https://doi.org/10.1126/science.1127647",
                     "reconstruction_loss", "the paper pretrains with RBMs and uses a 784-1000-500-250-30 network"),),
}


def literature_section(studies):
    lines = ["## Literature", ""]
    rows = []
    for study in studies:
        for claim in LITERATURE.get(study.name, ()):
            measured = [(study.test_value(r, claim.measured), r) for r in study.runs]
            measured = [m for m in measured if math.isfinite(m[0])]
            shown = "; ".join(f"{study.label(r)}: {v:.4g}" for v, r in measured[:6]) or "–"
            rows.append((study.name, claim.text, claim.source, f"test {claim.measured}: {shown}", claim.differs))
    if not rows:
        return lines + ["No published claim is registered for these studies.", ""]
    return lines + [_table(("study", "published claim", "source", "measured here", "what differs"), rows), ""]


# ----------------------------------------------------------------- consistency
def consistency_section(checks):
    lines = ["## Consistency check", "",
             f"(a) every epoch's logged `total_loss` against `reconstruction_loss + Σ w·term` (the saved model's "
             f"`loss_weights()`) and Keras' `loss` against `total_loss`, relative tolerance {consistency.HISTORY_RTOL:g} "
             "(float32 running means); (b) every test term the run reports, recomputed from the saved weights by "
             f"keraszoo's NumPy forward pass on the same images: deterministic terms to {consistency.TEST_RTOL:g} relative, "
             f"stochastic ones within {consistency.MC_SIGMAS:g} standard errors of the Monte-Carlo difference "
             "(samples: NumPy draws per image or batch).", ""]
    rows = []
    for c in checks:
        stochastic = sorted({t.samples for t in c.terms if t.stochastic})
        rows.append((c.run_id, c.variant, "pass" if c.history_ok else "FAIL", c.history_max_rel,
                     "pass" if c.test_ok else "FAIL", c.test_max_rel,
                     ", ".join(f"{t.name}{'*' if t.stochastic else ''}" for t in c.terms) or "–",
                     ",".join(map(str, stochastic)) or "–", "pass" if c.ok else "FAIL",
                     "; ".join(c.problems()).replace("|", "/") or "–"))
    lines.append(_table(("run", "variant", "(a) history", "(a) max rel. err.", "(b) test", "(b) max rel. err.",
                         "terms (* stochastic)", "samples", "result", "problems"), rows))
    failed = [c.run_id for c in checks if not c.ok]
    lines += ["", f"**{len(checks) - len(failed)} of {len(checks)} runs pass.**" + (
        f" Failed: {', '.join(failed)}." if failed else ""), ""]
    return lines


# ----------------------------------------------------------------- the report
def _study_section(study, out_dir):
    lines = [f"## Study `{study.name}`", ""]
    swept = study.swept
    lines.append(f"{len(study.runs)} runs; swept: {', '.join(f'`{k}`' for k in swept) or 'nothing (one setting)'}; "
                 f"variants: {', '.join(sorted({r['variant'] for r in study.runs}))}; dataset: "
                 f"{', '.join(sorted({r.get('dataset', '?') for r in study.runs}))}; test: first "
                 f"{', '.join(sorted({str(r['eval'].get('num_examples')) for r in study.runs}))} images of "
                 f"{', '.join(sorted({str(r['eval'].get('split')) for r in study.runs}))}.")
    lines.append("")
    terms = study.terms
    header = ["run", *swept] + [f"train {t}" for t in terms] + [f"test {t}" for t in terms]
    rows = [[r["run_id"], *(r["params"].get(k) for k in swept)] + [study.train_value(r, t) for t in terms]
            + [study.test_value(r, t) for t in terms] for r in study.runs]
    lines += ["### L_total and its terms (train: last epoch; test)", "", _table(header, rows), ""]
    others = sorted({k for r in study.runs for k, v in r.get("test", {}).items()
                     if k not in terms and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if others:
        lines += ["### Other test metrics", ""]
        for i in range(0, len(others), TABLE_COLUMNS):  # tables of at most TABLE_COLUMNS metrics stay readable
            chunk = others[i : i + TABLE_COLUMNS]
            rows = [[r["run_id"]] + [study.test_value(r, k) for k in chunk] for r in study.runs]
            lines += [_table(["run", *chunk], rows), ""]
    rows = [[r["run_id"], r.get("num_params"), r.get("epochs"), r.get("train_seconds"), r.get("seconds_per_epoch")]
            for r in study.runs]
    lines += ["### Size and training time", "", _table(["run", "parameters", "epochs", "train s", "s/epoch"], rows), ""]
    lines += ["### Figures", ""]
    fig_dir = out_dir / "figures"
    for stem, caption, fn in figures.GENERIC_FIGURES + figures.STUDY_FIGURES.get(study.name, ()):
        path = fn(study, fig_dir / f"{study.name}_{stem}.png")
        if path is not None:
            lines += [f"![{caption}](figures/{path.name})", "", f"*{caption}.*", ""]
    if study.images(1)[0] is None:
        lines += ["(Image figures left out: the test split could not be loaded here; pass --data-dir.)", ""]
    lines += ["### Discussion", ""] + [f"- {s}" for s in discussion(study)] + [""]
    return lines


def _provenance(runs, results_dir):
    try:  # a user's study is rerun from its spec file (runner.py records the path it was given)
        spec_file = json.loads((pathlib.Path(results_dir) / STUDY_FILE).read_text()).get("spec_file")
    except (OSError, ValueError):
        spec_file = None
    lines = []
    for (study, dataset, budget), group in sorted(_by(runs, lambda r: (r["study"], r.get("dataset"), r.get("budget"))).items(),
                                                  key=lambda kv: tuple(map(str, kv[0]))):
        versions = sorted({str(r.get("keraszoo_version")) for r in group})
        name = spec_file if spec_file and study not in STUDIES else study
        lines.append(f"- `keraszoo experiment {name} --dataset {dataset} --budget {budget} --out {results_dir}` "
                     f"({len(group)} runs, keraszoo {', '.join(versions)}, finished "
                     f"{max(str(r.get('finished_at')) for r in group)})")
    return lines


def _by(items, key):
    out = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


def write_report(results_dir, out_dir, *, data_dir=None, mc_samples=consistency.DEFAULT_MC_SAMPLES, command=None):
    """Writes ``out_dir/README.md`` and ``out_dir/figures/*.png``; returns ``(path, checks)``."""
    results_dir, out_dir = pathlib.Path(results_dir), pathlib.Path(out_dir)
    runs = read_results(results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(exist_ok=True)
    studies = [Study(name, group, results_dir, data_dir) for name, group in _by(runs, lambda r: r["study"]).items()]
    lines = [f"# Experiment report: {', '.join(s.name for s in studies)}", "",
             f"Produced by `{command or f'keraszoo report {results_dir} -o {out_dir}'}` from `{results_dir / 'results.jsonl'}` "
             f"({len(runs)} runs), written by:", ""] + _provenance(runs, results_dir) + [""]
    for study in studies:
        lines += _study_section(study, out_dir)
    lines += literature_section(studies)
    checks = []
    for study in studies:
        x, y = study.images(10**9)
        for r in study.runs:
            n = int(r["eval"]["num_examples"])
            images = (x[:n], y[:n]) if x is not None and len(x) >= n and r.get("dataset") == study.runs[0].get("dataset") \
                and r["eval"] == study.runs[0]["eval"] else None
            try:
                checks.append(consistency.check_run(r, results_dir, data_dir=data_dir, mc_samples=mc_samples, images=images))
            except Exception as err:  # noqa: BLE001 - a check that cannot run fails, shown in the table
                failed = consistency.RunCheck(str(r["run_id"]), str(r["variant"]))
                failed.history_problems.append(f"not checked: {type(err).__name__}: {err}")
                checks.append(failed)
    lines += consistency_section(checks)
    path = out_dir / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, checks
