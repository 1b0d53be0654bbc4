"""The report's "Literature" section: published claims beside the numbers measured here, with what differs.

A claim carries no published number unless it was checked at its source; :data:`LITERATURE` lists the claims
of each built-in study's papers (a user's study gets none). Beside each claim: every setting of the study that
measured its metric, as the mean over its seeds with its 95 % interval, in the likelihood it was measured in.

Where a study measured the test negative log-likelihood (the IWAE bound, in nats), the section also sets its
settings beside the published numbers of the same protocol, each with its setting: keraszoo's own converged zoo
models (their measured metrics and evaluation, read from the weights manifest) and pythae's reproductions of
Burda et al. (quoted with their source), and Burda, Grosse & Salakhutdinov's own Table 1 as a reproduction repository
quotes it (nbip/IWAE's README; the paper itself was not reachable from here, so those rows say so).
"""

from __future__ import annotations

import dataclasses
import re

from keraszoo.experiments.view import fmt
from keraszoo.experiments.view import table


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published claim beside a measured number: no published number unless it was checked at its source.

    ``measured``: the test metric set beside it (a regular expression matching whole metric names, such as
    ``denoised_psnr_.*_db``: every matching metric).
    """

    text: str
    source: str
    measured: str
    differs: str

    def metrics(self, runs) -> list:
        found = sorted({k for r in runs for k in r.get("test", {}) if re.fullmatch(self.measured, k)})
        return found


#: study name -> the claims of its papers (Literature section); other studies get none.
LITERATURE = {
    "beta": (Claim("Raising β above 1 trades reconstruction quality for a more disentangled, lower-rate code "
                   "(no number is quoted here: none was checked at its source).",
                   "Higgins et al., 2017, https://openreview.net/forum?id=Sy2fzU9gl", "reconstruction_loss",
                   "the paper trains on dSprites/CelebA/chairs with conv networks; here the study's dataset, "
                   "network and budget"),),
    "contractive": (Claim("The contractive penalty makes the code locally invariant (a smaller Jacobian norm) at a "
                          "small cost in reconstruction (claim named, no number quoted).",
                          "Rifai et al., 2011, https://icml.cc/2011/papers/455_icmlpaper.pdf",
                          "reconstruction_loss|jacobian_frobenius",
                          "the paper uses one sigmoid layer and its own λ grid and datasets"),),
    "noise": (Claim("Denoising training yields features that reconstruct clean inputs from corrupted ones "
                    "(claim named, no number quoted).", "Vincent et al., 2008, https://doi.org/10.1145/1390156.1390294",
                    r"denoised_psnr_.*_db", "the paper stacks layers and reports classification error, not PSNR"),),
    "sparsity": (Claim("A KL penalty toward a small target activation ρ gives sparse hidden units "
                       "(claim named, no number quoted).",
                       "Ng, 2011, https://web.stanford.edu/class/cs294a/sparseAutoencoder_2011new.pdf",
                       "mean_(code_)?activation", "the notes use one sigmoid hidden layer on natural-image patches"),),
    "variants": (
        Claim("The importance-weighted bound (k > 1) gives a better test log-likelihood than the VAE's ELBO on MNIST "
              "(Burda et al., Table 1: 84.78 nats for the IWAE at k = 50 against 86.76 for the VAE, one stochastic "
              "layer; quoted from nbip/IWAE's README, not checked against the paper).",
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


@dataclasses.dataclass(frozen=True)
class Published:
    """A published test NLL (nats) with its setting and protocol, quoted from its source."""

    source: str
    model: str
    setting: str
    protocol: str
    nll: float


#: Burda et al.'s Table 1 as nbip/IWAE's README (a TensorFlow 2 reproduction) quotes it beside its own numbers.
_BURDA = ("Burda, Grosse & Salakhutdinov, 2016, Table 1 (https://arxiv.org/abs/1509.00519), as quoted in "
          "nbip/IWAE's README; not checked against the paper")
#: their MNIST protocol, from the authors' code (yburda/iwae's README): a fresh binarization at every draw.
_BURDA_DATA = "MNIST binarized at random at every draw, 59,600 training images"

#: published numbers of the IWAE protocol (test NLL of binary MNIST, importance-sampled); each row's source says where it
#: was read and, for the paper's own table, that it was not checked against the paper.
PUBLISHED_NLL = (
    Published("pythae, examples/scripts/reproducibility/README.md", "VAE (pythae's reproduction)",
              "binary MNIST; the reference value there: 89.9", "NLL, 200 importance samples", 89.78),
    Published("pythae, examples/scripts/reproducibility/README.md", "IWAE, n_samples=50 (pythae's reproduction)",
              "binary MNIST; the reference value there: 87.1", "NLL, 5000 importance samples", 86.82),
    Published("https://huggingface.co/clementchadebec/reproduced_iwae (pythae)", "IWAE, n_samples=5 (pythae's "
              "reproduction)", "binary MNIST; the reference value there: 87.6", "NLL, 5000 importance samples", 87.85),
    *(Published(_BURDA, model, f"{layers}; {_BURDA_DATA}", "NLL, 5000 importance samples", nll)
      for model, layers, nll in (("VAE, k=1", "1 stochastic layer", 86.76),
                                 ("IWAE, k=50", "1 stochastic layer", 84.78),
                                 ("VAE, k=1", "2 stochastic layers", 85.33),
                                 ("IWAE, k=50", "2 stochastic layers", 82.90))),
)

#: keraszoo's converged zoo models measured under that protocol (their numbers come from the weights manifest).
ZOO_NLL_MODELS = ("vae_mnist", "iwae_mnist", "hvae_mnist")
#: the constructor arguments that describe a zoo model's setting.
_SETTING_KEYS = ("latent_dim", "hidden_dims", "upper_latent_dims", "num_samples", "stochastic_layers", "inference",
                 "kl_warmup_epochs")


def zoo_rows(names=ZOO_NLL_MODELS, metric="iwae_nll_nats") -> list:
    """``(source, model, setting, protocol, value)`` of each zoo model that records ``metric`` in the manifest."""
    from keraszoo.weights import manifest

    rows = []
    for name in names:
        try:
            entry = manifest.get_entry(name)
        except (KeyError, ValueError, OSError):
            continue
        value = (entry.get("metrics") or {}).get(metric)
        if not isinstance(value, (int, float)):
            continue
        config = (entry.get("model") or {}).get("config") or {}
        recipe = entry.get("recipe") or {}
        args = recipe.get("args") or {}
        ev = entry.get("evaluation") or {}
        setting = ", ".join(f"{k} {_value(config[k])}" for k in _SETTING_KEYS if config.get(k) not in (None, [], ""))
        trained = f"{args.get('epochs', '?')} epochs, {recipe.get('binarization') or args.get('binarize') or '?'} " \
                  "binarization in training"
        protocol = (f"IWAE bound, {ev.get('iwae_samples', '?')} importance samples, {_binarization(ev.get('binarize'))}, "
                    f"{ev.get('dataset', '?')} {ev.get('split', '?')} ({ev.get('num_examples', '?')} images)")
        rows.append((f"keraszoo zoo, weights manifest ({ev.get('date', '?')})",
                     f"`{name}` ({(entry.get('model') or {}).get('class', '?')})", f"{setting}; {trained}", protocol,
                     fmt(float(value))))
    return rows


def _value(value):
    return "-".join(fmt(v) for v in value) if isinstance(value, (list, tuple)) else fmt(value)


def _binarization(value):
    return "no binarization" if value in (None, "none") else f"{value} binarization"


def _measured_rows(study, metric):
    """``(setting, likelihood, n, mean ± 95 %)`` of every setting that measured ``metric``."""
    rows = []
    for s in study.settings():
        iv = s.interval(lambda r: study.test_value(r, metric))
        if iv.n:
            rows.append((s.label, s.likelihood, f"{iv.n}", iv.text()))
    return rows


def _protocol(study, settings_runs):
    ev = settings_runs[0].get("eval", {})
    return (f"IWAE bound, {ev.get('iwae_samples', '?')} importance samples, {_binarization(ev.get('binarize'))}, "
            f"{settings_runs[0].get('dataset', '?')} {ev.get('split', '?')} ({ev.get('num_examples', '?')} images), "
            f"budget {settings_runs[0].get('budget', '?')}")


def nll_section(studies, metric="iwae_nll_nats"):
    """The settings that measured the test NLL beside the zoo's and pythae's numbers of the same protocol."""
    measured = []
    for study in studies:
        for s in study.settings():
            iv = s.interval(lambda r, study=study: study.test_value(r, metric))
            if iv.n:
                measured.append((f"this report: study `{study.name}`", f"{s.label} (n={iv.n})",
                                 f"{s.runs[0].get('epochs', '?')}-epoch cap", _protocol(study, s.runs), iv.text()))
    if not measured:
        return []
    rows = zoo_rows(metric=metric) + [(p.source, p.model, p.setting, p.protocol, fmt(p.nll)) for p in PUBLISHED_NLL]
    return ["### Test NLL under the IWAE protocol (nats; lower is better)", "",
            "Each number with its setting and how it was measured: the settings here (mean ± 95 % over seeds), "
            "keraszoo's converged zoo models (one training run each, from the weights manifest) and pythae's "
            "reproductions of Burda et al. (quoted from their source) and Burda et al.'s Table 1 as a reproduction "
            "quotes it (not checked against the paper). Numbers of different protocols (importance samples, binarization, "
            "test images, training length) are not directly comparable.", "",
            table(("source", "model", "setting", "protocol", "test NLL (nats)"), measured + rows), ""]


#: studies whose published numbers are set beside their own tables (not claims): where the reader finds them.
BESIDE_TABLES = {name: "One-Class Deep SVDD's per-class AUROC (Ruff et al., 2018) is a row of the AUROC table and its "
                       "source is under it (section *One-class detection*)." for name in ("anomaly", "anomaly_cifar10")}


def literature_section(studies):
    lines = ["## Literature", ""]
    rows, measured = [], {}
    for study in studies:
        for i, claim in enumerate(LITERATURE.get(study.name, ()), 1):
            metrics = claim.metrics(study.runs)
            rows.append((study.name, f"{i}", claim.text, claim.source, ", ".join(f"`{m}`" for m in metrics) or "–",
                         claim.differs))
            for metric in metrics:
                measured.setdefault((study.name, metric), (study, []))[1].append(i)
    if not rows:
        beside = [f"{study.name}: {BESIDE_TABLES[study.name]}" for study in studies if study.name in BESIDE_TABLES]
        if beside:
            return lines + ["No claim is checked here; the published numbers stand beside the tables they concern. "
                            + " ".join(beside), ""]
        return lines + ["No published claim is registered for these studies.", ""]
    lines += [table(("study", "claim", "published claim", "source", "measured here", "what differs"), rows), ""]
    for (name, metric), (study, claims) in measured.items():  # each metric once, whatever claims it serves
        found = _measured_rows(study, metric)
        if found:
            which = f"claim{'s' if len(claims) > 1 else ''} {', '.join(map(str, claims))}"
            lines += [f"**{name}, {which}: test `{metric}` per setting** (mean ± 95 % over seeds):", "",
                      table(("setting", "likelihood", "n", f"test {metric}"), found), ""]
    return lines + nll_section(studies)
