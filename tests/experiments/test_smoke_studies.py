"""A smoke sweep of each built-in study on real digits (the bundled MNIST sample), checked study by study.

Two of the seven run by default (contractive, sparsity: two runs each); the others
are marked slow (``--runslow``): together the seven take a few minutes on 2 cores.
"""

import math
import time

import pytest

from keraszoo.experiments import read_results
from keraszoo.experiments import run_study


def _by(records, **params):
    out = [r for r in records if all(r["params"].get(k) == v for k, v in params.items())]
    assert out, params
    return out


def check_latent(records, out=None):
    classical = [r for r in records if r.get("kind") == "classical"]
    records = [r for r in records if r.get("kind") != "classical"]
    # PCA (deterministic: one run) and the linear autoencoder at each code size, in the autoencoders' unit
    assert sorted((r["variant"], r["params"]["latent_dim"]) for r in classical) == [
        ("linear_ae", 2), ("linear_ae", 16), ("pca", 2), ("pca", 16)]
    for r in classical:
        t = r["test"]
        assert r["model_dir"] is None and t["total_loss"] == t["reconstruction_loss"] > 0
        assert t["reconstruction_loss"] == pytest.approx(t["mse_per_pixel"] * 784, rel=1e-6)
    assert {(r["variant"], r["params"]["latent_dim"], r["params"]["reconstruction_loss"]) for r in records} == {
        ("ae", 2, "bce"), ("vae", 2, "bce"), ("ae", 16, "bce"), ("vae", 16, "bce"), ("ae", 16, "mse"),
        ("vae", 16, "mse")}
    for r in _by(records, model="vae"):
        assert 0 <= r["test"]["active_units"] <= r["params"]["latent_dim"]
        assert r["test"]["active_units_fraction"] == pytest.approx(r["test"]["active_units"] / r["params"]["latent_dim"])
    for r in _by(records, model="ae", reconstruction_loss="bce"):  # bce: the reconstruction term is the BCE metric
        assert r["test"]["reconstruction_loss"] == pytest.approx(r["test"]["bce_nats_per_image"], rel=1e-4)
    mse, = _by(records, model="ae", reconstruction_loss="mse")  # mse: sum over the pixels of the squared error
    assert mse["test"]["reconstruction_loss"] == pytest.approx(mse["test"]["mse_per_pixel"] * 784, rel=1e-4)


def check_depth(records, out=None):
    dense = sorted((r for r in records if "architecture" not in r["params"]), key=lambda r: len(r["params"]["hidden_dims"]))
    assert [r["params"]["hidden_dims"] for r in dense] == [[512], [512, 256, 128, 64]]
    conv, = _by(records, architecture="conv")
    assert conv["params"]["hidden_dims"] == [160] and conv["num_params"] != dense[0]["num_params"]


def check_beta(records, out=None):
    for r in records:  # total = reconstruction + beta * KL, with the run's own beta
        t = r["test"]
        assert t["total_loss"] == pytest.approx(t["reconstruction_loss"] + r["params"]["beta"] * t["kl_loss"], rel=1e-5)
        assert t["kl_loss"] >= 0 and "active_units" in t
    assert {r["params"]["beta"] for r in records} == {0.25, 4.0, 1.0}


def check_sparsity(records, out=None):
    kl, = _by(records, sparsity="kl")
    l1, = _by(records, sparsity="l1")
    assert 0 < kl["test"]["mean_code_activation"] < 1  # sigmoid codes
    assert l1["test"]["mean_code_activation"] >= 0 and l1["test"]["mean_abs_code_activation"] == pytest.approx(
        l1["test"]["mean_code_activation"])  # relu codes
    for r in (kl, l1):
        t = r["test"]
        assert t["total_loss"] == pytest.approx(t["reconstruction_loss"] + r["params"]["sparsity_weight"]
                                                * t["sparsity_loss"], rel=1e-5)
        assert t["mean_code_activation"] == pytest.approx(t["mean_activation"], rel=1e-4)  # the model's own metric


def check_contractive(records, out=None):
    cae, = _by(records, model="cae")
    ae, = _by(records, model="ae")
    for r in (cae, ae):  # the probes measure the baseline too
        assert r["test"]["jacobian_frobenius"] > 0 and r["test"]["code_shift"] > 0
    # the probe is the model's own ||J_f||_F where the model has one
    assert cae["test"]["jacobian_frobenius"] == pytest.approx(cae["test"]["mean_jacobian_frobenius"], rel=1e-4)
    t = cae["test"]
    assert t["total_loss"] == pytest.approx(t["reconstruction_loss"] + 0.1 * t["contractive_loss"], rel=1e-5)


def check_noise(records, out=None):
    assert {r["params"].get("noise") for r in records} == {"gaussian", "masking", None}
    for r in records:
        t = r["test"]
        assert t["noisy_psnr_gaussian_0.1_db"] > t["noisy_psnr_gaussian_0.3_db"] > t["noisy_psnr_gaussian_0.5_db"]
        for noise, levels in (("gaussian", (0.1, 0.3, 0.5)), ("masking", (0.25, 0.5)), ("salt_and_pepper", (0.1, 0.2))):
            for level in levels:
                assert math.isfinite(t[f"denoised_psnr_{noise}_{level:g}_db"])
    noisy = {r["test"]["noisy_psnr_masking_0.5_db"] for r in records}
    assert len(noisy) == 1  # every model sees the very same corrupted images


def check_variants(records, out=None):
    from keraszoo.models import list_variants

    assert sorted(r["variant"] for r in records) == sorted(list_variants())
    for r in records:
        assert math.isfinite(r["test"]["total_loss"]) and r["seconds_per_epoch"] > 0 and r["num_params"] > 0
        assert r["params"]["latent_dim"] == 16
    vqvae, = _by(records, model="vqvae")  # its prior is trained after it, so it samples like the generative variants
    assert vqvae["params"]["prior_epochs"] == 10
    if out is not None:
        import keraszoo

        model = keraszoo.load(str(out / vqvae["model_dir"]))
        assert model.is_generative and model.sample(2, seed=0).shape == (2, 28, 28, 1)


def check_cifar10(records, out=None):
    for r in records:
        assert r["dataset"] == "cifar10" and (r.get("kind") == "classical" or r["params"]["architecture"] == "conv")


def check_anomaly(records, out=None):
    classical = [r for r in records if r.get("kind") == "classical"]
    models = [r for r in records if r.get("kind") != "classical"]
    assert {r["params"]["classes"][0] for r in records} == {0}  # one class normal
    for r in classical:  # the baselines' one-class metrics under their score's name
        assert any(k.startswith("anomaly_auroc_") for k in r["test"]) and r["model_dir"] is None
    for r in models:
        declared = [k[len("anomaly_auroc_"):] for k in r["test"] if k.startswith("anomaly_auroc_")]
        assert "reconstruction" in declared and all(0 <= r["test"][f"anomaly_auroc_{m}"] <= 1 for m in declared)


CHECKS = {"latent": check_latent, "depth": check_depth, "beta": check_beta, "sparsity": check_sparsity,
          "contractive": check_contractive, "noise": check_noise, "variants": check_variants,
          "latent_cifar10": check_cifar10, "beta_cifar10": check_cifar10, "noise_cifar10": check_cifar10,
          "variants_cifar10": check_cifar10, "anomaly": check_anomaly,
          "anomaly_cifar10": lambda records, out=None: (check_cifar10(records), check_anomaly(records))}
FAST = ("contractive", "sparsity")


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    """A folder with a tiny ``cifar10.npz`` of random 8-bit colour images (CI has no CIFAR-10: plumbing only)."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("cifar")
    np.savez(folder / "cifar10.npz", x_train=rng.integers(0, 256, (400, 32, 32, 3), dtype="uint8"),
             y_train=rng.integers(0, 10, 400).astype("uint8"),
             x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype="uint8"), y_test=np.arange(100, dtype="uint8") % 10)
    return folder


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in CHECKS])
def test_smoke_sweep(name, tmp_path, request):
    from keraszoo.experiments import STUDIES

    dataset = STUDIES[name].datasets[0]
    data_dir = request.getfixturevalue("cifar10_dir" if dataset == "cifar10" else "mnist_dir")
    started = time.time()
    result = run_study(name, dataset=dataset, budget="smoke", out=tmp_path / name, data_dir=str(data_dir), quiet=True)
    seconds = time.time() - started
    records = read_results(tmp_path / name)
    assert not result.failed and not result.skipped
    assert sorted(r["run_id"] for r in records) == sorted(result.planned)
    for r in records:  # (a classical anomaly detector has no loss: its metrics are the one-class ones)
        assert r["study"] == name and r["budget"] == "smoke"
        assert (r.get("kind") == "classical" and "total_loss" not in r["test"]) or math.isfinite(r["test"]["total_loss"])
        assert all(len(v) == 1 for v in r["history"].values())
    CHECKS[name](records, tmp_path / name)
    print(f"smoke {name}: {len(records)} runs in {seconds:.0f} s")


def test_every_builtin_study_has_a_smoke_check():
    from keraszoo.experiments import STUDIES

    assert set(CHECKS) == set(STUDIES)


def test_depth_s_conv_model_has_about_the_dense_two_layer_one_s_parameters():
    from keraszoo.experiments import plan_runs
    from keraszoo.models import get_variant

    runs = plan_runs("depth", "mnist", "default")[0]
    counts = {}
    for r in runs:
        kwargs = r.recipe().model_spec()[1]
        counts[tuple(r.params["hidden_dims"]), r.params.get("architecture", "dense")] = \
            get_variant("ae")(input_shape=(28, 28, 1), **kwargs).count_params()
    conv, dense = counts[(160,), "conv"], counts[(512, 256), "dense"]
    assert abs(conv - dense) / dense < 0.05, counts
