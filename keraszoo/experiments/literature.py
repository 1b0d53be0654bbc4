"""The report's "Literature" section: published claims beside the numbers measured here, with what differs.

A claim carries no published number unless it was checked at its source; :data:`LITERATURE` lists the claims
of each built-in study's papers (a user's study gets none).
"""

from __future__ import annotations

import dataclasses
import math

from keraszoo.experiments.view import table


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
    return lines + [table(("study", "published claim", "source", "measured here", "what differs"), rows), ""]
