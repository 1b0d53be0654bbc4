"""The L_total consistency check: the NumPy reference against Keras, real runs pass, perturbed ones fail."""

import copy
import json

import keras
import numpy as np
import pytest
from keras import ops

import keraszoo
from keraszoo.experiments import consistency
from keraszoo.models import list_variants
from keraszoo.models import networks
from keraszoo.models import vqvae
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.base import BaseAutoEncoder
from keraszoo.models.reference import np_forward
from keraszoo.models.reference import np_jacobian_frobenius_sq
from tests.experiments.report_fixtures import find
from tests.experiments.report_fixtures import results_dir_for


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    results_dir, data_dir = results_dir_for(tmp_path_factory)
    records = [json.loads(line) for line in (results_dir / "results.jsonl").read_text().splitlines()]
    return results_dir, data_dir, records


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_numpy_forward_matches_keras(architecture, mnist_sample):
    x = mnist_sample[0][:4]
    rng = np.random.default_rng(0)
    encoder = networks.build_encoder((28, 28, 1), 6, architecture, (32,), (8, 16), output_activation="sigmoid")
    decoder = networks.build_decoder(4, (28, 28, 1), architecture, (32,), (8, 16), condition_dim=3)
    z, c = rng.standard_normal((4, 4)).astype("float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    np.testing.assert_allclose(np_forward(encoder, x), np.asarray(encoder(x)), atol=1e-5)
    np.testing.assert_allclose(np_forward(decoder, [z, c]), np.asarray(decoder([z, c])), atol=1e-5)
    h, jac = np_jacobian_frobenius_sq(encoder, x)
    cae = list_variants()["cae"](latent_dim=6, architecture=architecture, hidden_dims=(32,), conv_filters=(8, 16),
                                 encoder=encoder)
    np.testing.assert_allclose(jac, np.asarray(cae.jacobian_frobenius_sq(cae._check_inputs(x))), rtol=1e-4)


def test_numpy_forward_runs_batch_normalization_as_keras_infers():
    """The ladder's MLPs (Dense -> BatchNormalization -> ReLU), with moving statistics away from 0 and 1."""
    mlp = networks.build_mlp(6, (8,), 4, output_activation="relu", name="bn", batch_norm=True)
    rng = np.random.default_rng(0)
    for layer in mlp.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.standard_normal((5, 6)).astype("float32")
    np.testing.assert_allclose(np_forward(mlp, x), np.asarray(mlp(x, training=False)), atol=1e-5)


def test_numpy_forward_matches_keras_residual_conv_networks(mnist_sample):
    """The VQ-VAE's networks: 4x4 strided convolutions and transposed ones, residual Add blocks, ReLU layers."""
    x = mnist_sample[0][:3]
    encoder = vqvae.build_encoder((28, 28, 1), 8, (8, 16), (4,))
    decoder = vqvae.build_decoder((7, 7), 8, (28, 28, 1), (8, 16), (4,))
    z = np.asarray(encoder(x))
    np.testing.assert_allclose(np_forward(encoder, x), z, atol=1e-5)
    np.testing.assert_allclose(np_forward(decoder, z), np.asarray(decoder(z)), atol=1e-5)


@pytest.mark.slow  # ~25 s for the 11 variants; the real runs below cover ae, vae, cae on every default run
@pytest.mark.parametrize("name", sorted(list_variants()))
def test_every_variant_is_recomputed_or_reported_not_checked(name, mnist_sample):
    """What ``evaluate`` reports for each variant matches the NumPy terms; a variant without them fails, visibly."""
    x, y = mnist_sample[0][:64], mnist_sample[1][:64].astype("int64")
    cls = list_variants()[name]
    architecture = cls.architectures[0]
    model = cls(latent_dim=4, architecture=architecture, hidden_dims=(32,), conv_filters=(8, 16), seed=1)
    model.compile()
    reported = model.evaluate(x, y if model.requires_labels else None, batch_size=32, verbose=0,
                              return_dict=True)
    terms, problems = consistency.check_test(model, reported, x, y, batch_size=32, mc_samples=16)
    assert not problems, problems
    assert {t.name for t in terms} == {k for k in consistency.logged_terms(model) if k in reported}
    for t in terms:
        assert t.ok, t


def test_real_runs_pass(results):
    results_dir, data_dir, records = results
    for record in records:
        check = consistency.check_run(record, results_dir, data_dir=data_dir)
        assert check.ok, (record["run_id"], check.problems())
        assert check.history_max_rel <= consistency.HISTORY_RTOL
        assert {"total_loss", "reconstruction_loss"} <= {t.name for t in check.terms}


@pytest.mark.parametrize("study,params,term", [("latent", {"latent_dim": 2}, "reconstruction_loss"),
                                               ("beta", {"beta": 0.5}, "kl_loss"),
                                               ("contractive", {"contractive_weight": 0.1}, "contractive_loss")])
def test_a_perturbed_test_term_fails(results, study, params, term):
    results_dir, data_dir, records = results
    record = copy.deepcopy(find(records, study, **params))
    record["test"][term] *= 1.001
    check = consistency.check_run(record, results_dir, data_dir=data_dir)
    assert check.history_ok and not check.test_ok and not check.ok
    assert any(f"test {term}" in p for p in check.problems()), check.problems()


def test_a_perturbed_history_fails(results):
    results_dir, data_dir, records = results
    record = copy.deepcopy(find(records, "beta", beta=2.0))
    record["history"]["kl_loss"][0] += 0.05
    check = consistency.check_run(record, results_dir, data_dir=data_dir)
    assert not check.history_ok and check.test_ok
    assert any("epoch 1" in p for p in check.problems()), check.problems()


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_the_discretized_logistic_likelihood_is_recomputed_with_its_learned_scales(name, mnist_sample):
    x = np.round(mnist_sample[0][:64] * 255) / 255
    model = list_variants()[name](latent_dim=4, hidden_dims=(32,), seed=1, reconstruction_loss="discretized_logistic")
    model.decoder_log_scale.assign(np.log([0.07]))  # not the initial scale: the check must read the trained one
    model.compile()
    reported = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    terms, problems = consistency.check_test(model, reported, x, None, batch_size=32, mc_samples=16)
    assert not problems and "reconstruction_loss" in {t.name for t in terms}, problems
    assert all(t.ok for t in terms), terms
    reported["reconstruction_loss"] *= 1.02
    terms, _ = consistency.check_test(model, reported, x, None, batch_size=32, mc_samples=16)
    assert not next(t for t in terms if t.name == "reconstruction_loss").ok


def test_a_model_without_a_reference_and_missing_terms_are_not_silent_passes():
    model = list_variants()["ae"](latent_dim=2, hidden_dims=(8,))
    x = np.zeros((4, 28, 28, 1), "float32")
    _, problems = consistency.check_test(model, {"mse_per_pixel": 0.1}, x, None, batch_size=4)
    assert problems and "no total_loss" in problems[0]
    keras.backend.clear_session()


class NoReferenceAE(BaseAutoEncoder):
    """A model (not registered) with the AutoEncoder's maths and the base's reference_terms: none."""

    loss_terms = AutoEncoder.loss_terms


class NewTermAE(AutoEncoder):
    """A subclass that logs a term its inherited (AutoEncoder's) reference does not recompute."""

    regularizer_names = ("code_loss",)

    def loss_terms(self, x, training=False):
        terms = super().loss_terms(x, training)
        code = ops.mean(ops.sum(ops.square(self.encoder(self._check_inputs(x))), axis=-1))
        return {**terms, "code_loss": code, "total_loss": terms["total_loss"] + code}


def test_no_reference_and_a_term_without_one_are_reported_not_checked(mnist_sample):
    x = mnist_sample[0][:8]
    model = NoReferenceAE(latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile()
    reported = model.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    terms, problems = consistency.check_test(model, reported, x, None, batch_size=4)
    assert not terms and problems == ["not checked: NoReferenceAE has no NumPy reference (reference_terms)"]
    model = NewTermAE(latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile()
    reported = model.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    terms, problems = consistency.check_test(model, reported, x, None, batch_size=4)
    assert "not checked: test code_loss has no NumPy recomputation" in problems, problems
    assert not next(t for t in terms if t.name == "total_loss").ok  # AutoEncoder's total leaves the new term out


def test_check_run_uses_a_given_model_instead_of_loading_one(results, tmp_path):
    results_dir, data_dir, records = results
    record = find(records, "latent", latent_dim=2)
    model = keraszoo.load(str(results_dir / record["model_dir"]))
    moved = copy.deepcopy(record)
    moved["model_dir"] = "nowhere"  # the saved model is not read
    check = consistency.check_run(moved, tmp_path, data_dir=data_dir, model=model)
    assert check.ok, check.problems()
    assert not consistency.check_run(moved, tmp_path, data_dir=data_dir).ok  # without it, the model must load


def test_check_a_reruns_from_the_results_line_alone(results):
    """Part (a) needs no saved model: the line records its loss weights; an older line without them is checked
    with the weights of the model its params build; a line whose weights disagree with the saved model's fails."""
    results_dir, _, records = results
    record = find(records, "beta", beta=0.5)
    check = consistency.check_record(record)  # no model, no builder: the recorded weights (no schedule)
    assert check.history_ok and check.weights_source == "results line" and check.history_points, check.problems()
    assert record["loss_weights"] == {"kl_loss": 0.5}
    wrong = copy.deepcopy(record)
    wrong["loss_weights"] = {"kl_loss": 1.0}  # the log was not summed with these
    assert not consistency.check_record(wrong).history_ok
    old = {k: v for k, v in record.items() if k not in ("loss_weights", "loss_weight_metrics")}
    built = []

    def build(line):
        built.append(line["run_id"])
        return list_variants()["vae"](latent_dim=2, hidden_dims=(8,), beta=line["params"]["beta"])

    check = consistency.check_record(old, build=build)
    assert check.history_ok and check.weights_source == "model built from params" and built == [record["run_id"]]
    assert consistency.check_record(old).history_problems == [
        "not checked: the line records no loss_weights and no model gives them"]
    model = keraszoo.load(str(results_dir / record["model_dir"]))
    check = consistency.check_record(wrong, model)
    assert any("differ from the saved model's" in p for p in check.history_problems)
    keras.backend.clear_session()


def test_a_classical_reference_is_not_applicable():
    line = {"run_id": "pca-2", "variant": "pca", "kind": "classical", "history": {}, "test": {}}
    check = consistency.check_record(line)
    assert check.ok and check.not_applicable and not check.problems()
