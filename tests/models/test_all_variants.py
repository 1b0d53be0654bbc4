"""Contract tests parametrized over the variant registry: a new variant is tested automatically."""

import re

import keras
import numpy as np
import pytest

import keraszoo.models
from keraszoo.models import list_variants
from keraszoo.models.metadata import Hyperparameter
from keraszoo.models.metadata import Paper
from tests.models import model_checks

VARIANTS = sorted(list_variants())
SHAPES = {"mnist": (28, 28, 1), "cifar": (32, 32, 3)}


def architectures(name):
    """The architectures a variant builds: its class's ``architectures`` (the VQ-VAE's grid of codes: conv only)."""
    return tuple(list_variants()[name].architectures)


def make(name, shape=(28, 28, 1), architecture=None, **kwargs):
    """A small model; ``architecture=None``: the variant's first (``"dense"`` unless it has none); skips one it lacks."""
    architecture = architectures(name)[0] if architecture is None else architecture
    if architecture not in architectures(name):
        pytest.skip(f"{name} has no {architecture!r} architecture (it builds {', '.join(architectures(name))})")
    small = {"hidden_dims": (32,), "conv_filters": (8, 16)}
    small.update(kwargs)
    return list_variants()[name](input_shape=shape, latent_dim=4, architecture=architecture, seed=1, **small)


def batch(shape, n=8, seed=0):
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def test_registry_exposes_every_variant():
    assert {"ae", "dae", "sae", "cae", "vae", "hvae", "aae"} <= set(VARIANTS)
    for cls in list_variants().values():
        assert getattr(keraszoo.models, cls.__name__) is cls
    assert keraszoo.models.get_variant("VAE") is keraszoo.models.VAE
    with pytest.raises(ValueError, match="Did you mean 'vae'"):
        keraszoo.models.get_variant("vea")


# ------------------------------------------------------------------ metadata: each variant speaks for itself


def _accepted_kwargs(cls):
    import inspect

    names = set()
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__ and klass is not keras.Model and issubclass(klass, keraszoo.models.BaseAutoEncoder):
            names |= set(inspect.signature(klass.__init__).parameters)
    return names - {"self", "args", "kwargs"}


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_declares_its_own_title_papers_and_presets(name):
    cls = list_variants()[name]
    own = cls.__dict__
    assert isinstance(own.get("title"), str) and own["title"], f"{cls.__name__} needs its own `title`"
    assert own.get("papers"), f"{cls.__name__} needs its own `papers`"
    for paper in cls.papers:
        assert isinstance(paper, Paper) and paper.title and paper.url.startswith("https://")
    assert isinstance(cls.presets, dict)
    assert isinstance(cls.is_generative, bool)


@pytest.mark.parametrize("name", VARIANTS)
def test_presets_build_and_paper_is_one_of_the_variants(name):
    cls = list_variants()[name]
    presets = {k: v for k, v in keraszoo.models.list_presets().items() if v[0] == name}
    assert name in presets
    for preset, (_, kwargs) in presets.items():
        resolved, resolved_kwargs = keraszoo.models.resolve_preset(preset)
        assert resolved is cls and resolved_kwargs == kwargs
        model = make(name, **kwargs)
        assert model.paper() in cls.papers
        for arg, value in kwargs.items():
            assert getattr(model, arg) == value, (preset, arg)


@pytest.mark.parametrize("name", VARIANTS)
def test_command_line_hyperparameters_are_constructor_arguments(name):
    cls = list_variants()[name]
    accepted = _accepted_kwargs(cls)
    table = cls.all_hyperparameters()
    assert {"latent_dim", "architecture", "hidden_dims"} <= set(table)
    for arg, spec in table.items():
        assert arg in accepted, f"{cls.__name__}.hyperparameters names {arg!r}, not a constructor argument"
        assert isinstance(spec, Hyperparameter) and spec.help and callable(spec.type)
    for arg in cls.all_training_options():
        cls.compile_options(**{arg: 1e-3})  # accepted by the variant's compile_options
    with pytest.raises(ValueError, match="no training option"):
        cls.compile_options(not_an_option=1)


@pytest.mark.parametrize("name", VARIANTS)
def test_term_definitions_name_a_logged_term_and_every_choice_of_their_argument(name):
    """A term whose definition an argument chooses (reports give each definition its own panel): the term is one the
    model logs, the argument a constructor argument with a closed set of choices, and every choice has a meaning."""
    cls = list_variants()[name]
    table = cls.all_hyperparameters()
    for term, (argument, meanings) in cls.term_definitions.items():
        assert term in cls.regularizer_names, f"{cls.__name__}: {term!r} is not one of its terms"
        assert argument in table and table[argument].choices, f"{cls.__name__}: {argument!r} has no closed choices"
        assert set(meanings) == set(table[argument].choices)
        assert all(isinstance(m, str) and m for m in meanings.values())
        for value in table[argument].choices:
            definition, = cls.term_definition(term, {argument: value})
            assert (definition.term, definition.argument, definition.value) == (term, argument, value)
    assert cls.term_definition("reconstruction_loss", {}) == ()
    assert len(cls.term_definition("total_loss", {})) == len(cls.term_definitions)


@pytest.mark.parametrize("name", VARIANTS)
def test_evaluation_hook_returns_exactly_the_reported_metrics(name):
    model = make(name)
    x = batch((28, 28, 1), 16)
    codes = np.asarray(model.encode(x, **model.label_kwargs(model.cycled_labels(len(x)))))
    values = model.evaluation_metrics(x, codes, batch_size=8, seed=0)
    reported = {m.name for m in type(model).reported_metrics}
    references = {m.reference for m in type(model).reported_metrics if m.reference}
    assert reported <= set(values) <= reported | references
    for metric in type(model).reported_metrics:
        assert np.isfinite(values[metric.name])
        assert metric.render(values)  # the results table can print it


@pytest.mark.parametrize("name", VARIANTS)
def test_sample_works_exactly_for_generative_variants(name):
    model = make(name)
    if model.is_generative:
        assert tuple(model.sample(2, seed=0, **model.label_kwargs(0)).shape) == (2, 28, 28, 1)
    else:
        with pytest.raises(NotImplementedError, match="not a generative model"):
            model.sample(2)


@pytest.mark.parametrize("name", VARIANTS)
def test_builds_from_input_shape_and_latent_dim_alone(name):
    model = list_variants()[name](input_shape=(28, 28, 1), latent_dim=16)
    assert model.built and model.latent_dim == 16 and model.image_shape == (28, 28, 1)
    assert model.variant == name
    model.compile()  # default optimizer(s)
    assert model.optimizer is not None


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("shape_name,architecture", [("mnist", "dense"), ("cifar", "conv")])
def test_config_and_keras_roundtrip(name, shape_name, architecture, tmp_path):
    model = make(name, SHAPES[shape_name], architecture)
    model_checks.check_config_roundtrip(model)
    model.compile()
    model_checks.check_keras_roundtrip(model, batch(SHAPES[shape_name], 4), str(tmp_path / "m.keras"))


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("shape_name,architecture",
                         [("mnist", "dense"), ("mnist", "conv"), ("cifar", "conv")])
def test_api_shapes_and_one_fit_step(name, shape_name, architecture):
    shape = SHAPES[shape_name]
    model = make(name, shape, architecture)
    x = batch(shape, 8)
    model_checks.check_api_shapes(model, x)
    model_checks.check_fit_step(model, x)


@pytest.mark.parametrize("name", VARIANTS)
def test_weights_file_roundtrip_after_training(name, tmp_path):
    """Trained weights written to .weights.h5 load into a model rebuilt from its config."""
    model = make(name)
    x = batch((28, 28, 1), 16)
    model.compile(run_eagerly=True)  # the compiled path is covered by the learning test
    labels = model.cycled_labels(len(x))
    model.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model), safe_mode=True)
    clone.load_weights(path)
    kw = model.label_kwargs(labels)
    np.testing.assert_allclose(model_checks.to_numpy(clone.reconstruct(x, **kw)),
                               model_checks.to_numpy(model.reconstruct(x, **kw)), atol=1e-6)


@pytest.mark.parametrize("name", VARIANTS)
def test_user_supplied_networks(name, tmp_path):
    cls = list_variants()[name]
    probe = make(name)
    enc_dim = probe._encoder_output_dim()
    grid = probe.quantized_shape  # a VQ-VAE's networks map to and from a grid of code vectors
    encoder = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(int(np.prod(grid)) if grid else enc_dim, activation=probe.code_activation)]
                               + ([keras.layers.Reshape(grid)] if grid else []), name="my_encoder")
    decoder = keras.Sequential([keras.Input(grid or (4,))] + ([keras.layers.Flatten()] if grid else [])
                               + [keras.layers.Dense(784), keras.layers.Reshape((28, 28, 1))], name="my_decoder")
    if probe.condition_dim:  # a conditional variant's networks take [input, condition]
        encoder, decoder = (_conditioned(net, probe.condition_dim) for net in (encoder, decoder))
    model = cls(input_shape=(28, 28, 1), latent_dim=4, encoder=encoder, decoder=decoder)
    assert model.encoder is encoder
    model.compile()
    x = batch((28, 28, 1), 4)
    model_checks.check_keras_roundtrip(model, x, str(tmp_path / "custom.keras"))
    with pytest.raises(ValueError, match="network must"):
        cls(input_shape=(28, 28, 1), latent_dim=5, encoder=encoder, decoder=decoder)


def _conditioned(network, condition_dim):
    """``[input, condition] -> network(input)``'s layers with the condition concatenated after the first one."""
    first, *rest = network.layers
    inputs, condition = keras.Input(network.input_shape[1:]), keras.Input((condition_dim,))
    h = keras.layers.Concatenate()([keras.layers.Flatten()(inputs), condition])
    for layer in rest if isinstance(first, keras.layers.Flatten) else [first, *rest]:
        h = type(layer).from_config(layer.get_config())(h)
    return keras.Model([inputs, condition], h, name=network.name)


@pytest.mark.parametrize("name", VARIANTS)
def test_bad_inputs_raise_clear_value_errors(name):
    model = make(name)
    good = batch((28, 28, 1), 2)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 28, 28, 1\)"):
        model.reconstruct(batch((32, 32, 3), 2))
    with pytest.raises(ValueError, match="channel"):
        model(np.random.rand(2, 28, 28, 3).astype("float32"))
    with pytest.raises(ValueError, match="add the channel axis"):
        model.encode(good[..., 0])
    with pytest.raises(ValueError, match="floating point"):
        model.encode((good * 255).astype("uint8"))
    with pytest.raises(ValueError, match="NaN or Inf"):
        bad = good.copy()
        bad[0, 0, 0, 0] = np.nan
        model.reconstruct(bad)
    with pytest.raises(ValueError, match="divide uint8-range pixels by 255"):
        model.encode(good * 255)
    codes = ", ".join(map(str, model.code_shape))
    with pytest.raises(ValueError, match=re.escape(f"latent codes of shape (batch, {codes})")):
        model.decode(np.zeros((2, 3), "float32"))


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("kwargs,match", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"latent_dim": 2.5}, "latent_dim"),
    ({"input_shape": (28, 28)}, "input_shape"),
    ({"architecture": "transformer"}, "architecture"),
    ({"reconstruction_loss": "hinge"}, "reconstruction_loss"),
    ({"hidden_dims": (32, -1)}, "hidden_dims"),
    ({"input_shape": (30, 30, 1), "architecture": "conv"}, "divisible by 4"),
])
def test_nonsensical_hyperparameters(name, kwargs, match):
    args = {"input_shape": (28, 28, 1), "latent_dim": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        list_variants()[name](**args)


@pytest.mark.parametrize("name,kwargs,match", [
    ("vae", {"beta": -1.0}, "beta"),
    ("hvae", {"beta": -0.5}, "beta"),
    ("vae", {"decoder_std": 0.0}, "decoder_std"),
    ("dae", {"noise": "pink"}, "noise"),
    ("dae", {"noise": "masking", "noise_level": 1.5}, "probability"),
    ("sae", {"sparsity": "l2"}, "sparsity"),
    ("sae", {"sparsity_target": 1.0}, "sparsity_target"),
    ("cae", {"contractive_weight": -1}, "contractive_weight"),
    ("cae", {"contractive_method": "closed_form"}, "single sigmoid Dense"),
    ("aae", {"prior": "uniform"}, "prior"),
    ("hvae", {"upper_latent_dims": ()}, "upper_latent_dims"),
    ("cvae", {"num_classes": 0}, "num_classes"),
])
def test_nonsensical_variant_hyperparameters(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        list_variants()[name](input_shape=(28, 28, 1), latent_dim=4, **kwargs)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_learns_on_real_mnist_digits(name, mnist_sample):
    """On 256 real MNIST test digits, 40 compiled (graph-mode) steps cut the loss clearly."""
    x = mnist_sample[0][:256]
    model = list_variants()[name](input_shape=(28, 28, 1), latent_dim=8, seed=3)
    y = mnist_sample[1][:256] if model.requires_labels else None  # a conditional model's labels
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=True)  # 8 steps an epoch
    after = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert len(history.history["loss"]) == 5
    # Untrained decoders sit near 543 nats (28*28*log 2); a learning model is far below.
    assert after["reconstruction_loss"] < 0.6 * before["reconstruction_loss"], (before, after)
    assert after["total_loss"] < before["total_loss"], (before, after)
    for key, value in after.items():
        assert np.isfinite(value), (key, value)


@pytest.mark.parametrize("name", VARIANTS)
def test_loss_weights_add_up_to_total_loss(name, mnist_sample):
    """``total_loss == reconstruction_loss + sum(w * term)`` with ``loss_weights()``, at default and at changed weights."""
    x, y = mnist_sample[0][:32], mnist_sample[1][:32].astype("int64")
    cls = list_variants()[name]
    weight_args = [arg for arg in cls.all_hyperparameters() if arg.endswith("_weight") or arg == "beta"]
    for changed in ({}, {arg: 0.37 for arg in weight_args}):
        try:
            model = make(name, **changed)
        except ValueError:  # IWAE's bound needs beta = 1: the changed weights keep what the class accepts
            model = make(name, **{k: v for k, v in changed.items() if k != "beta"})
        weights = model.loss_weights()
        terms = {k: float(v) for k, v in model.loss_terms(x, **model.label_kwargs(y)).items()}
        assert set(weights) <= set(terms), (weights, sorted(terms))
        for arg, value in changed.items():
            if getattr(model, arg, None) == value:
                assert value in weights.values(), f"{name}: {arg}={value} is not among loss_weights() {weights}"
        total = terms["reconstruction_loss"] + sum(w * terms[k] for k, w in weights.items())
        np.testing.assert_allclose(total, terms["total_loss"], rtol=1e-5, err_msg=f"{name} {changed}: {terms} {weights}")
