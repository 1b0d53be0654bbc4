"""The built-in studies (issue 15's research plan, issue 28's budgets), and how a study is named.

:data:`STUDIES` maps each name to its :class:`~keraszoo.experiments.study.Study`;
:func:`get_study` takes a built-in name, a path to a JSON spec file or a
``Study``. Every built-in runs at three budgets (:data:`~keraszoo.experiments.study.BUDGETS`):
``smoke`` (a reduced grid, one epoch on 256 images, one seed: what the tests run),
``default`` (to convergence: the whole train split less 5,000 validation images,
early stopping on the validation total loss under an epoch cap, three seeds per
setting, the whole test split) and ``full`` (longer, five seeds; for a GPU).

The grids are sized to the budget the research plan gives them on 2 CPU cores (about
12 CPU-hours for the MNIST studies): fewer settings, never fewer seeds.

A study's ``baselines`` name its reference runs by their arguments (the
contractive and noise studies: the plain autoencoder); the report sets the
other runs beside them. ``classical`` names the non-neural references computed
in the same sweep (the latent study: PCA and the linear autoencoder at every
code size; :mod:`keraszoo.experiments.classical`).

The anomaly studies (``anomaly``, ``anomaly_cifar10``) are the one-class benchmark of Ruff et al. (2018): each
run trains on one class (the Recipe's ``classes``), holds out a tenth of it for validation (the budget's
``val_fraction``), and the ``anomaly`` probe measures every anomaly score of the model on the whole test split;
scikit-learn's one-class detectors are their classical references (:mod:`keraszoo.anomaly.baselines`).

The latent and beta studies train the plan's objective literally, the squared error
``Σ(x − x̂)²`` (``reconstruction_loss="mse"``; for the VAE ``Σ(x − x̂)² + β·KL``), beside the
Bernoulli likelihood (``"bce"``). Their units differ (squared error against nats), so their
tables and figures keep them apart.
"""

from __future__ import annotations

import pathlib

from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError
from keraszoo.experiments.study import _did_you_mean

__all__ = ["STUDIES", "get_study", "list_studies"]

_LATENT_SIZES = [2, 4, 8, 16, 32, 64]
_BCE_LATENT_SIZES = [2, 16, 64]
_BCE_BETAS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
#: CIFAR-10's networks: two strided convolutions (16, 32 filters) and the code straight from their features.
_CIFAR_NET = {"architecture": "conv", "conv_filters": [16, 32], "hidden_dims": []}
#: CIFAR-10's epoch cap at the default budget (an epoch costs about 3x MNIST's).
_CIFAR_EPOCHS = 30
#: The squared error is about a tenth of the Bernoulli NLL per image: its KL weights sit lower.
_MSE_BETAS = [0.01, 0.1, 1.0]

STUDIES = {
    "latent": Study(
        name="latent",
        description=("Latent size 2..64 for the autoencoder and the VAE trained on the plan's objective, the squared "
                     "error (mse), beside PCA and the linear autoencoder at the same code sizes, and at three sizes "
                     "with the Bernoulli likelihood (bce): reconstruction error and k-NN accuracy of the codes "
                     "against code size."),
        variants=("ae", "vae"),
        grid=[{"latent_dim": _LATENT_SIZES, "reconstruction_loss": ["mse"]},
              {"latent_dim": _BCE_LATENT_SIZES, "reconstruction_loss": ["bce"]}],
        budgets={"smoke": {"grid": [{"latent_dim": [2, 16], "reconstruction_loss": ["bce"]},
                                    {"latent_dim": [16], "reconstruction_loss": ["mse"]}]}},
        probes=["active_units"],
        classical=["pca", "linear_ae"],
        datasets=("mnist", "fashion_mnist"),
    ),
    "depth": Study(
        name="depth",
        description=("1 to 4 hidden layers of the dense autoencoder, and a convolutional one with about the "
                     "parameters of the 2-layer dense one (conv 32,64 + 160 units: 1.06M vs 1.08M)."),
        variants=("ae",),
        fixed={"latent_dim": 16},
        grid=[{"hidden_dims": [[512], [512, 256], [512, 256, 128], [512, 256, 128, 64]]},
              {"architecture": ["conv"], "hidden_dims": [[160]]}],
        budgets={"smoke": {"grid": [{"hidden_dims": [[512], [512, 256, 128, 64]]},
                                    {"architecture": ["conv"], "hidden_dims": [[160]]}]}},
    ),
    "beta": Study(
        name="beta",
        description=("The VAE's KL weight beta, with the Bernoulli likelihood (beta 0.25..8) and with the plan's "
                     "squared error, Σ(x − x̂)² + beta·KL (beta 0.01..1): reconstruction against KL (the "
                     "rate-distortion curve), active units, samples."),
        variants=("vae",),
        fixed={"latent_dim": 16},
        grid=[{"beta": _BCE_BETAS, "reconstruction_loss": ["bce"]},
              {"beta": _MSE_BETAS, "reconstruction_loss": ["mse"]}],
        budgets={"smoke": {"grid": [{"beta": [0.25, 4.0], "reconstruction_loss": ["bce"]},
                                    {"beta": [1.0], "reconstruction_loss": ["mse"]}]}},
        probes=["active_units"],
        datasets=("mnist", "fashion_mnist"),
    ),
    "sparsity": Study(
        name="sparsity",
        description=("The sparse autoencoder's KL penalty (its weight at target rho 0.05, and the target at weight "
                     "1) and L1 penalty (its weight): reconstruction against mean code activation."),
        variants=("sae",),
        fixed={"latent_dim": 64},
        grid=[{"sparsity": ["kl"], "sparsity_weight": [0.1, 1.0, 3.0], "sparsity_target": [0.05]},
              {"sparsity": ["kl"], "sparsity_weight": [1.0], "sparsity_target": [0.02, 0.2]},
              {"sparsity": ["l1"], "sparsity_weight": [0.01, 0.1, 1.0]}],
        budgets={"smoke": {"grid": [{"sparsity": ["kl"], "sparsity_weight": [1.0], "sparsity_target": [0.05]},
                                    {"sparsity": ["l1"], "sparsity_weight": [0.1]}]}},
        probes=["mean_code_activation"],
    ),
    "contractive": Study(
        name="contractive",
        description=("The contractive penalty's weight lambda, beside the plain autoencoder: reconstruction "
                     "against ||J_f||_F, and how far codes move under small input noise. lambda = 0 is the "
                     "CAE's own control (its sigmoid code, no penalty), which separates the penalty's effect "
                     "from the code activation's."),
        fixed={"latent_dim": 32},
        grid=[{"model": ["cae"], "contractive_weight": [0.0, 0.01, 0.1, 1.0]}, {"model": ["ae"]}],
        budgets={"smoke": {"grid": [{"model": ["cae"], "contractive_weight": [0.1]}, {"model": ["ae"]}]}},
        probes=["jacobian_frobenius", "code_shift"],
        baselines=[{"params": {"model": "ae"}, "label": "the plain autoencoder's"},
                   {"params": {"contractive_weight": 0.0}, "label": "the unpenalized CAE's (lambda = 0)"}],
    ),
    "noise": Study(
        name="noise",
        description=("The denoising autoencoder's noise type and level, beside the plain autoencoder: PSNR of "
                     "denoised test images at several test-time noise levels."),
        fixed={"latent_dim": 32},
        grid=[{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.1, 0.5]},
              {"model": ["dae"], "noise": ["masking"], "noise_level": [0.1, 0.5]},
              {"model": ["dae"], "noise": ["salt_and_pepper"], "noise_level": [0.05, 0.2]},
              {"model": ["ae"]}],
        budgets={"smoke": {"grid": [{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.3]},
                                    {"model": ["dae"], "noise": ["masking"], "noise_level": [0.25]},
                                    {"model": ["ae"]}]}},
        probes=["denoising_psnr"],
        baselines=[{"params": {"model": "ae"}, "label": "the plain autoencoder's"}],
    ),
    "variants": Study(
        name="variants",
        description=("Every registered variant side by side at latent size 16, each in its default architecture "
                     "(the VQ-VAE: conv, 16-wide code vectors, and its PixelCNN prior trained 10 epochs after it, so "
                     "that it samples): every metric, parameters, seconds per epoch."),
        fixed={"latent_dim": 16},
        # every registered variant (tests/experiments/test_smoke_studies.py checks it); the VQ-VAE with its prior
        grid=[{"model": ["aae", "ae", "cae", "cvae", "dae", "hvae", "iwae", "sae", "vae", "wae"]},
              {"model": ["vqvae"], "prior_epochs": [10]}],
        probes=["active_units"],
        datasets=("mnist", "fashion_mnist"),
    ),
    # ---- CIFAR-10: convolutional networks sized to about 8 CPU-hours for the four studies (a 16,32-filter
    # encoder, no dense hidden layer: ~3,000 images/s per core), 8-bit colour likelihoods, a 30-epoch cap.
    "latent_cifar10": Study(
        name="latent_cifar10",
        description=("CIFAR-10: latent size 32 and 128 for the convolutional autoencoder and VAE trained on the "
                     "squared error Σ(x − x̂)², and the VAE with the discretized logistic likelihood of 8-bit colour "
                     "(nats, bits/dim), beside PCA and the linear autoencoder."),
        variants=("ae", "vae"),
        fixed=dict(_CIFAR_NET),
        grid=[{"latent_dim": [32, 128], "reconstruction_loss": ["mse"]},
              {"model": ["vae"], "latent_dim": [32, 128], "reconstruction_loss": ["discretized_logistic"]}],
        budgets={"smoke": {"grid": [{"latent_dim": [32], "reconstruction_loss": ["mse"]}]},
                 "default": {"epochs": _CIFAR_EPOCHS}},
        probes=["active_units"],
        classical=["pca", "linear_ae"],
        datasets=("cifar10",),
    ),
    "beta_cifar10": Study(
        name="beta_cifar10",
        description=("CIFAR-10: the convolutional VAE's KL weight beta with the discretized logistic likelihood "
                     "(beta 0.5, 1, 4) and with the squared error Σ(x − x̂)² + beta·KL (beta 0.03, 0.3)."),
        variants=("vae",),
        fixed={**_CIFAR_NET, "latent_dim": 64},
        grid=[{"beta": [0.5, 1.0, 4.0], "reconstruction_loss": ["discretized_logistic"]},
              {"beta": [0.03, 0.3], "reconstruction_loss": ["mse"]}],
        budgets={"smoke": {"grid": [{"beta": [1.0], "reconstruction_loss": ["discretized_logistic"]}]},
                 "default": {"epochs": _CIFAR_EPOCHS}},
        probes=["active_units"],
        datasets=("cifar10",),
    ),
    "noise_cifar10": Study(
        name="noise_cifar10",
        description=("CIFAR-10: the convolutional denoising autoencoder (squared error) with each noise type, beside "
                     "the plain autoencoder: PSNR of denoised test images at several test-time noise levels."),
        fixed={**_CIFAR_NET, "latent_dim": 64, "reconstruction_loss": "mse"},
        grid=[{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.1]},
              {"model": ["dae"], "noise": ["masking"], "noise_level": [0.25]},
              {"model": ["dae"], "noise": ["salt_and_pepper"], "noise_level": [0.1]},
              {"model": ["ae"]}],
        budgets={"smoke": {"grid": [{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.1]},
                                    {"model": ["ae"]}]},
                 "default": {"epochs": _CIFAR_EPOCHS}},
        probes=["denoising_psnr"],
        baselines=[{"params": {"model": "ae"}, "label": "the plain autoencoder's"}],
        datasets=("cifar10",),
    ),
    "variants_cifar10": Study(
        name="variants_cifar10",
        description=("CIFAR-10: every registered variant side by side with the same convolutional networks at latent "
                     "size 64: the autoencoder family on the squared error, the VAE family on the discretized "
                     "logistic likelihood of 8-bit colour (the IWAE's bound needs a likelihood); the CAE with the "
                     "random-projection estimate of its Jacobian penalty (the exact one costs a backward pass per "
                     "code unit); the VQ-VAE's PixelCNN prior trained 10 epochs after it, so that it samples."),
        fixed={**_CIFAR_NET, "latent_dim": 64},
        grid=[{"model": ["ae", "dae", "sae", "aae", "wae"], "reconstruction_loss": ["mse"]},
              {"model": ["vqvae"], "reconstruction_loss": ["mse"], "prior_epochs": [10]},
              {"model": ["cae"], "reconstruction_loss": ["mse"], "contractive_method": ["projection"]},
              {"model": ["vae", "hvae", "iwae", "cvae"], "reconstruction_loss": ["discretized_logistic"]}],
        budgets={"smoke": {"grid": [{"model": ["ae"], "reconstruction_loss": ["mse"]},
                                    {"model": ["vae"], "reconstruction_loss": ["discretized_logistic"]}]},
                 "default": {"epochs": _CIFAR_EPOCHS}},
        probes=["active_units"],
        datasets=("cifar10",),
    ),
}


# ---- Anomaly detection: the one-class benchmark of Ruff et al. (2018). Each run trains on the training images of
# one class (about 6,000 MNIST or 5,000 CIFAR-10 images) and scores the whole test split (its class normal, the
# nine others anomalous): AUROC and average precision of every score the model declares (the anomaly probe),
# beside scikit-learn's one-class detectors fit on the same images. 10% of the class is held out for validation
# (a share of the run's own images: a fixed count of the whole split would be most of one class).
_ONE_CLASS = [[c] for c in range(10)]
_ANOMALY_BASELINES = ["pca_anomaly", "isolation_forest", "ocsvm", "kde"]
#: the one-class budgets: a share of the class held out, early stopping; no FID, no IWAE NLL, a small k-NN fit. The
#: default caps are the other studies' (50 epochs on MNIST, 30 on CIFAR-10): at 20, every one-class run of a first
#: sweep reached the cap with its validation loss still falling 2-10 % over its last epochs.
_ANOMALY_DEFAULT = {"val_examples": None, "val_fraction": 0.1, "patience": 5, "fid": False, "iwae_samples": None,
                    "knn_train_examples": 1000}
#: the scores' posterior draws: the IWAE bound with k = 20 (MNIST) or 10 (CIFAR-10: a conv decoder per draw, 10,000
#: test images), the ELBO averaged over 10 or 5 draws.
_ANOMALY_PROBES = {"anomaly": {"iwae_samples": 20, "elbo_samples": 10}}
_ANOMALY_PROBES_CIFAR = {"anomaly": {"iwae_samples": 10, "elbo_samples": 5}}

#: the VQ-VAE of the one-class runs: a small one (16,32 filters, one residual block, 64 codes) and a small PixelCNN
#: prior trained 5 epochs on the class's codes (its ``prior`` score); the default VQ-VAE costs three times as much.
_ONE_CLASS_VQVAE = {"model": ["vqvae"], "conv_filters": [[16, 32]], "hidden_dims": [[16]], "num_embeddings": [64],
                    "prior_epochs": [5], "prior_channels": [16], "prior_layers": [4]}

STUDIES["anomaly"] = Study(
    name="anomaly",
    description=("One-class anomaly detection (Ruff et al., 2018): for each class, train on the training images of "
                 "that class only and score the whole test split (the class normal, the nine others anomalous): "
                 "AUROC and average precision of every anomaly score each model declares (reconstruction; the VAE's "
                 "ELBO and IWAE bound; the Mahalanobis distance of the codes; the VQ-VAE's PixelCNN prior), beside "
                 "PCA reconstruction error, Isolation Forest, a one-class SVM and a KDE fit on the same images."),
    fixed={"latent_dim": 32},
    grid=[{"model": ["ae", "conv_ae", "dae", "vae"], "classes": _ONE_CLASS},
          {**_ONE_CLASS_VQVAE, "classes": _ONE_CLASS}],
    budgets={"smoke": {"grid": [{"model": ["ae", "vae"], "classes": [[0]]},
                                {**_ONE_CLASS_VQVAE, "classes": [[0]], "prior_epochs": [1]}]},
             "default": {**_ANOMALY_DEFAULT, "epochs": 50},
             "full": {**_ANOMALY_DEFAULT, "epochs": 200, "patience": 10}},
    probes=_ANOMALY_PROBES,
    classical=_ANOMALY_BASELINES,
    datasets=("mnist", "fashion_mnist"),
)
_CIFAR_ONE_CLASS = [{"model": ["ae", "dae"], "reconstruction_loss": ["mse"], "classes": _ONE_CLASS},
                    {"model": ["vae"], "reconstruction_loss": ["discretized_logistic"], "classes": _ONE_CLASS}]
STUDIES["anomaly_cifar10"] = Study(
    name="anomaly_cifar10",
    description=("CIFAR-10, one class at a time (Ruff et al., 2018): the convolutional autoencoder and denoising "
                 "autoencoder on the squared error and the VAE with the discretized logistic likelihood of 8-bit colour "
                 "(ELBO and IWAE scores), each trained on one class and scoring the whole test split, beside PCA, "
                 "Isolation Forest, a one-class SVM and a KDE; the VQ-VAE with its PixelCNN prior at the full budget "
                 "(on a GPU: it costs as much as the three others on 2 CPU cores)."),
    fixed={**_CIFAR_NET, "latent_dim": 128},
    grid=_CIFAR_ONE_CLASS + [{"model": ["vqvae"], "reconstruction_loss": ["mse"], "classes": _ONE_CLASS,
                              "prior_epochs": [10]}],
    budgets={"smoke": {"grid": [{"model": ["ae"], "reconstruction_loss": ["mse"], "classes": [[0]]}]},
             "default": {**_ANOMALY_DEFAULT, "epochs": 30, "grid": _CIFAR_ONE_CLASS},
             "full": {**_ANOMALY_DEFAULT, "epochs": 100, "patience": 10}},
    probes=_ANOMALY_PROBES_CIFAR,
    classical=_ANOMALY_BASELINES,
    datasets=("cifar10",),
)


def list_studies() -> dict:
    """``{name: Study}`` of the built-in studies."""
    return dict(STUDIES)


def get_study(study) -> Study:
    """A :class:`Study` from a built-in name, a JSON spec file's path, or a ``Study`` (returned as is).

    Raises:
        StudyError: an unknown name (with the closest names) or a malformed spec file (naming the field).
    """
    if isinstance(study, Study):
        return study
    if isinstance(study, dict):
        return Study.from_dict(study)
    if not isinstance(study, (str, pathlib.Path)):
        raise StudyError(f"A study is a built-in name, a JSON spec file's path or a Study; got {type(study).__name__}.")
    text = str(study)
    if text in STUDIES:
        return STUDIES[text]
    path = pathlib.Path(text).expanduser()
    if path.is_file() or text.endswith(".json"):
        return Study.from_json(path)
    raise StudyError(f"Unknown study {text!r}.{_did_you_mean(text, STUDIES)} Built-in studies: "
                     f"{', '.join(STUDIES)}; or give the path of a JSON spec file (see keraszoo.experiments.study).")
