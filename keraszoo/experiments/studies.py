"""The built-in studies (issue 15's research plan), and how a study is named.

:data:`STUDIES` maps each name to its :class:`~keraszoo.experiments.study.Study`;
:func:`get_study` takes a built-in name, a path to a JSON spec file or a
``Study``. Every built-in runs at three budgets: ``smoke`` (a reduced grid, one
epoch on 256 images: about 2 minutes per study on 2 CPU cores; what the tests
run), ``default`` (at most about 30 minutes per study on 2 cores) and ``full``
(the whole train split, for a GPU).

A study's ``baselines`` name its reference runs by their arguments (the
contractive and noise studies: the plain autoencoder); the report sets the
other runs beside them.

The latent and beta studies set the seed's own objective, squared error
(``reconstruction_loss="mse"``), beside the Bernoulli likelihood (``"bce"``).
"""

from __future__ import annotations

import pathlib

from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError
from keraszoo.experiments.study import _did_you_mean

__all__ = ["STUDIES", "get_study", "list_studies"]

_LATENT_SIZES = [2, 4, 8, 16, 32, 64]
_BETAS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]

STUDIES = {
    "latent": Study(
        name="latent",
        description=("Latent size 2..64 for the autoencoder and the VAE, with the Bernoulli likelihood (bce) and "
                     "squared error (mse): reconstruction error and k-NN accuracy of the codes against code size."),
        variants=("ae", "vae"),
        grid={"latent_dim": _LATENT_SIZES, "reconstruction_loss": ["bce", "mse"]},
        budgets={"smoke": {"grid": [{"latent_dim": [2, 16], "reconstruction_loss": ["bce"]},
                                    {"latent_dim": [16], "reconstruction_loss": ["mse"]}]},
                 "default": {"limit": 10000, "epochs": 5}},
        probes=["active_units"],
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
                                    {"architecture": ["conv"], "hidden_dims": [[160]]}]},
                 "default": {"limit": 10000, "epochs": 5}},
    ),
    "beta": Study(
        name="beta",
        description=("beta in {0.25, .., 8} for the VAE with bce and mse: reconstruction against KL (the "
                     "rate-distortion curve), active units, samples."),
        variants=("vae",),
        fixed={"latent_dim": 16},
        grid={"beta": _BETAS, "reconstruction_loss": ["bce", "mse"]},
        budgets={"smoke": {"grid": [{"beta": [0.25, 4.0], "reconstruction_loss": ["bce"]},
                                    {"beta": [1.0], "reconstruction_loss": ["mse"]}]},
                 "default": {"limit": 20000, "epochs": 5}},
        probes=["active_units"],
    ),
    "sparsity": Study(
        name="sparsity",
        description=("The sparse autoencoder's KL penalty (weight x target rho) and L1 penalty (weight): "
                     "reconstruction against mean code activation."),
        variants=("sae",),
        fixed={"latent_dim": 64},
        grid=[{"sparsity": ["kl"], "sparsity_weight": [0.1, 1.0, 3.0], "sparsity_target": [0.02, 0.05, 0.2]},
              {"sparsity": ["l1"], "sparsity_weight": [0.01, 0.1, 1.0]}],
        budgets={"smoke": {"grid": [{"sparsity": ["kl"], "sparsity_weight": [1.0], "sparsity_target": [0.05]},
                                    {"sparsity": ["l1"], "sparsity_weight": [0.1]}]},
                 "default": {"limit": 10000, "epochs": 5}},
        probes=["mean_code_activation"],
    ),
    "contractive": Study(
        name="contractive",
        description=("The contractive penalty's weight lambda, beside the plain autoencoder: reconstruction "
                     "against ||J_f||_F, and how far codes move under small input noise. lambda = 0 is the "
                     "CAE's own control (its sigmoid code, no penalty), which separates the penalty's effect "
                     "from the code activation's."),
        fixed={"latent_dim": 32},
        grid=[{"model": ["cae"], "contractive_weight": [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]}, {"model": ["ae"]}],
        # The exact Jacobian makes a CAE step several times an AE's: smaller batches, more steps for the images.
        budgets={"smoke": {"grid": [{"model": ["cae"], "contractive_weight": [0.1]}, {"model": ["ae"]}]},
                 "default": {"limit": 10000, "epochs": 4, "batch_size": 64}},
        probes=["jacobian_frobenius", "code_shift"],
        baselines=[{"params": {"model": "ae"}, "label": "the plain autoencoder's"},
                   {"params": {"contractive_weight": 0.0}, "label": "the unpenalized CAE's (lambda = 0)"}],
    ),
    "noise": Study(
        name="noise",
        description=("The denoising autoencoder's noise type and level, beside the plain autoencoder: PSNR of "
                     "denoised test images at several test-time noise levels."),
        fixed={"latent_dim": 32},
        grid=[{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.1, 0.3, 0.5]},
              {"model": ["dae"], "noise": ["masking"], "noise_level": [0.1, 0.25, 0.5]},
              {"model": ["dae"], "noise": ["salt_and_pepper"], "noise_level": [0.05, 0.1, 0.2]},
              {"model": ["ae"]}],
        budgets={"smoke": {"grid": [{"model": ["dae"], "noise": ["gaussian"], "noise_level": [0.3]},
                                    {"model": ["dae"], "noise": ["masking"], "noise_level": [0.25]},
                                    {"model": ["ae"]}]},
                 "default": {"limit": 10000, "epochs": 5}},
        probes=["denoising_psnr"],
        baselines=[{"params": {"model": "ae"}, "label": "the plain autoencoder's"}],
    ),
    "variants": Study(
        name="variants",
        description=("Every registered variant side by side at latent size 16, each in its default architecture "
                     "(the VQ-VAE: conv, 16-wide code vectors), on MNIST and (--dataset cifar10) CIFAR-10: every "
                     "metric, parameters, seconds per epoch."),
        variants=("*",),
        fixed={"latent_dim": 16},
        grid={},
        budgets={"default": {"limit": 10000, "epochs": 3}},
        probes=["active_units"],
        datasets=("mnist", "cifar10", "fashion_mnist"),
    ),
}


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
