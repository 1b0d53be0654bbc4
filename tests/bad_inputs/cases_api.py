"""Bad inputs of the public Python API: the models' methods and constructors, ``keraszoo.load``,
``keraszoo.info`` / ``list_models``, ``keraszoo.evaluate``, ``save_pretrained`` and ``export``.

Each ``run`` receives an empty tmp folder; inputs it prepares go under ``tmp / "in"``.
"""

from __future__ import annotations

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import inputs

AREA = "public API"


def case(id, description, run, error, match, **kwargs):
    return Case(id=id, area=AREA, description=description, run=run, error=error, match=match, **kwargs)


def _models():
    import keraszoo.models as models

    return models


def _build(cls_name, **kwargs):
    """``keraszoo.models.<cls_name>`` on 8x8x1 images with tiny layers, plus ``kwargs``."""

    def run(tmp):
        settings = {"input_shape": shared.SHAPE, "latent_dim": 2, "hidden_dims": (4,), **kwargs}
        return getattr(_models(), cls_name)(**settings)

    return run


# --------------------------------------------------------------------------- images in


def _images_cases():
    x = shared.images
    return [
        case("encode-wrong-image-size", "model.encode(x) with 9x9 images for an 8x8 model",
             lambda tmp: shared.ae().encode(x(shape=(9, 9, 1))), ValueError, r"expects images of shape \(batch, 8, 8, 1\)"),
        case("reconstruct-wrong-channels", "model.reconstruct(x) with RGB images for a grayscale model",
             lambda tmp: shared.ae().reconstruct(x(shape=(8, 8, 3))), ValueError, r"takes 1 channel\(s\), the input has 3"),
        case("encode-single-image", "model.encode(x) with one image, no batch axis",
             lambda tmp: shared.ae().encode(x(1)[0]), ValueError, r"add a batch axis"),
        case("encode-no-channel-axis", "model.encode(x) with (batch, 8, 8) images, no channel axis",
             lambda tmp: shared.ae().encode(x(2)[..., 0]), ValueError, r"add the channel axis"),
        case("encode-1d-input", "model.encode(x) with a flat vector of 64 pixels",
             lambda tmp: shared.ae().encode(np.full(64, 0.5, "float32")), ValueError, r"expects images of shape .*received shape \(64,\)"),
        case("reconstruct-uint8", "model.reconstruct(x) with uint8 pixels 0..255",
             lambda tmp: shared.ae().reconstruct(x(value=200, dtype="uint8")), ValueError,
             r"floating point images .*astype\('float32'\) / 255"),
        case("reconstruct-bool", "model.reconstruct(x) with a boolean mask",
             lambda tmp: shared.ae().reconstruct(x(value=1, dtype="bool")), ValueError, r"floating point images.*received dtype bool"),
        case("encode-object-dtype", "model.encode(x) with an object array (e.g. built from a list of mixed items)",
             lambda tmp: shared.ae().encode(np.full((1, *shared.SHAPE), None, dtype=object)), (ValueError, TypeError),
             r"floating point images"),
        case("reconstruct-pixels-0-255", "model.reconstruct(x) with float pixels in 0..255 (not divided by 255)",
             lambda tmp: shared.ae().reconstruct(x(value=200.0)), ValueError,
             r"pixel values in \[0, 1\].*divide uint8-range pixels by 255"),
        case("reconstruct-negative-pixels", "model.reconstruct(x) with pixels in [-1, 1] (tanh-scaled)",
             lambda tmp: shared.ae().reconstruct(x(value=-1.0)), ValueError, r"pixel values in \[0, 1\]; received values in \[-1, -1\]"),
        case("encode-nan", "model.encode(x) with NaN pixels",
             lambda tmp: shared.ae().encode(x(value=np.nan)), ValueError, r"NaN or Inf values; expected finite values in \[0, 1\]"),
        case("reconstruct-inf", "model.reconstruct(x) with infinite pixels",
             lambda tmp: shared.ae().reconstruct(x(value=np.inf)), ValueError, r"NaN or Inf"),
        case("predict-wrong-image-size", "model.predict(x) (Keras' own loop) with 9x9 images",
             lambda tmp: shared.ae().predict(x(shape=(9, 9, 1)), verbose=0), ValueError, r"expects images of shape \(batch, 8, 8, 1\)"),
    ]


# --------------------------------------------------------------------------- codes, sampling, interpolation


def _codes_cases():
    return [
        case("decode-wrong-code-width", "model.decode(z) with codes of width 5 for latent_dim 3",
             lambda tmp: shared.vae().decode(np.zeros((2, 5), "float32")), ValueError,
             r"latent codes of shape \(batch, 3\); received shape \(2, 5\)"),
        case("decode-1d-code", "model.decode(z) with one code, no batch axis",
             lambda tmp: shared.vae().decode(np.zeros(3, "float32")), ValueError,
             r"latent codes of shape \(batch, 3\); received shape \(3,\)"),
        case("decode-nan-codes", "model.decode(z) with NaN codes",
             lambda tmp: shared.vae().decode(np.full((2, 3), np.nan, "float32")), ValueError, r"NaN or Inf codes"),
        case("decode-string-codes", "model.decode(z) with an array of strings",
             lambda tmp: shared.vae().decode(np.array([["a", "b", "c"]])), (ValueError, TypeError), r"latent codes"),
        case("sample-zero", "model.sample(0)",
             lambda tmp: shared.vae().sample(0), ValueError, r"`n` must be a positive integer; received 0"),
        case("sample-negative", "model.sample(-5)",
             lambda tmp: shared.vae().sample(-5), ValueError, r"`n` must be a positive integer; received -5"),
        case("sample-float", "model.sample(2.5)",
             lambda tmp: shared.vae().sample(2.5), ValueError, r"`n` must be a positive integer; received 2.5"),
        case("sample-string-seed", "model.sample(4, seed='abc')",
             lambda tmp: shared.vae().sample(4, seed="abc"), ValueError,
             r"`seed` must be either an integer or an instance of `SeedGenerator`"),
        case("sample-not-generative", "model.sample(4) on a plain AutoEncoder (no prior)",
             lambda tmp: shared.ae().sample(4), NotImplementedError, r"not a generative model.*VAE"),
        case("interpolate-one-step", "model.interpolate(a, b, steps=1)",
             lambda tmp: shared.vae().interpolate(shared.images(1)[0], shared.images(1)[0], steps=1), ValueError,
             r"`steps` must be at least 2"),
        case("interpolate-batch-mismatch", "model.interpolate(a, b) with 2 images against 1",
             lambda tmp: shared.vae().interpolate(shared.images(2), shared.images(1)), ValueError,
             r"must hold the same number of images"),
        case("log-likelihood-zero-samples", "vae.log_likelihood(x, num_samples=0)",
             lambda tmp: shared.vae().log_likelihood(shared.images(2), num_samples=0), ValueError,
             r"`num_samples` must be a positive integer"),
        case("elbo-of-squared-error-vae", "VAE(reconstruction_loss='mse').elbo(x) (the squared error, no likelihood)",
             lambda tmp: _build("VAE", reconstruction_loss="mse")(tmp).elbo(shared.images(2)), NotImplementedError,
             r"has no likelihood, so no `elbo`.*reconstruction_loss='gaussian'"),
    ]


# --------------------------------------------------------------------------- constructors


def _constructor_cases():
    def c(id, description, cls_name, match, error=ValueError, xfail=None, **kwargs):
        return case(id, description, _build(cls_name, **kwargs), error, match, xfail=xfail)

    return [
        c("ae-latent-dim-zero", "AutoEncoder(latent_dim=0)", "AutoEncoder", r"`latent_dim` must be a positive integer; received 0",
          latent_dim=0),
        c("ae-latent-dim-float", "AutoEncoder(latent_dim=2.5)", "AutoEncoder", r"`latent_dim` must be a positive integer", latent_dim=2.5),
        c("ae-latent-dim-huge", "AutoEncoder(latent_dim=10**12) (a typo'd size)", "AutoEncoder",
          r"keraszoo builds at most \d+ weights per layer", latent_dim=10**12),
        c("ae-hidden-dims-negative", "AutoEncoder(hidden_dims=(64, -3))", "AutoEncoder",
          r"`hidden_dims\[...\]` must be a positive integer; received -3", hidden_dims=(64, -3)),
        c("ae-hidden-dims-int", "AutoEncoder(hidden_dims=64) (an int, not a sequence)", "AutoEncoder",
          r"`hidden_dims` must be a sequence of positive integers", hidden_dims=64),
        c("ae-unknown-architecture", "AutoEncoder(architecture='resnet')", "AutoEncoder",
          r"Unknown `architecture` 'resnet'; expected one of 'dense', 'conv'", architecture="resnet"),
        c("ae-unknown-reconstruction-loss", "AutoEncoder(reconstruction_loss='l1')", "AutoEncoder",
          r"Unknown `reconstruction_loss` 'l1'", reconstruction_loss="l1"),
        c("ae-input-shape-2d", "AutoEncoder(input_shape=(28, 28)) (no channel axis)", "AutoEncoder",
          r"`input_shape` must be \(height, width, channels\)", input_shape=(28, 28)),
        c("ae-input-shape-zero", "AutoEncoder(input_shape=(28, 28, 0))", "AutoEncoder",
          r"`input_shape` must be \(height, width, channels\) with positive sizes", input_shape=(28, 28, 0)),
        c("ae-input-shape-fractional", "AutoEncoder(input_shape=(8.5, 8, 1))", "AutoEncoder", r"`input_shape` must be",
          input_shape=(8.5, 8, 1)),
        c("conv-ae-indivisible-size", "AutoEncoder(architecture='conv', input_shape=(30, 30, 1)) with two stride-2 layers",
          "AutoEncoder", r"height and width must be divisible by 4", architecture="conv", input_shape=(30, 30, 1), conv_filters=(4, 4)),
        c("ae-seed-string", "AutoEncoder(seed='0')", "AutoEncoder", r"`seed` must be an integer or None", seed="0"),
        c("vae-beta-nan", "VAE(beta=float('nan'))", "VAE", r"`beta` must be a finite number >= 0; received nan", beta=float("nan")),
        c("vae-beta-negative", "VAE(beta=-1)", "VAE", r"`beta` must be a finite number >= 0", beta=-1),
        c("vae-decoder-std-zero", "VAE(decoder_std=0)", "VAE", r"`decoder_std` must be > 0", decoder_std=0),
        c("sae-sparsity-target-zero", "SparseAutoEncoder(sparsity_target=0)", "SparseAutoEncoder",
          r"`sparsity_target` must lie in \(0, 1\)", sparsity_target=0),
        c("sae-sparsity-target-above-one", "SparseAutoEncoder(sparsity_target=1.5)", "SparseAutoEncoder",
          r"`sparsity_target` must lie in \(0, 1\)", sparsity_target=1.5),
        c("sae-unknown-sparsity", "SparseAutoEncoder(sparsity='l2')", "SparseAutoEncoder", r"Unknown `sparsity` 'l2'", sparsity="l2"),
        c("dae-noise-level-negative", "DenoisingAutoEncoder(noise_level=-0.1)", "DenoisingAutoEncoder",
          r"`noise_level` must be a finite number >= 0", noise_level=-0.1),
        c("dae-masking-probability-above-one", "DenoisingAutoEncoder(noise='masking', noise_level=1.5)", "DenoisingAutoEncoder",
          r"`noise_level` is a probability in \[0, 1\]", noise="masking", noise_level=1.5),
        c("cae-weight-inf", "ContractiveAutoEncoder(contractive_weight=float('inf'))", "ContractiveAutoEncoder",
          r"`contractive_weight` must be a finite number >= 0", contractive_weight=float("inf")),
        c("cae-zero-projections", "ContractiveAutoEncoder(contractive_method='projection', num_projections=0)", "ContractiveAutoEncoder",
          r"`num_projections` must be a positive integer", contractive_method="projection", num_projections=0),
        c("hvae-no-upper-layers", "HierarchicalVAE(upper_latent_dims=())", "HierarchicalVAE",
          r"`upper_latent_dims` must not be empty", upper_latent_dims=()),
        c("hvae-unknown-inference", "HierarchicalVAE(inference='top_down')", "HierarchicalVAE",
          r"Unknown `inference` 'top_down'; expected one of 'ladder', 'bottom_up'", inference="top_down"),
        c("iwae-squared-error", "IWAE(reconstruction_loss='mse') (its bound needs a likelihood)", "IWAE",
          r"IWAE's bound is a bound on log p\(x\) and needs a decoder likelihood.*received 'mse'", reconstruction_loss="mse"),
        c("aae-prior-std-zero", "AdversarialAutoEncoder(prior_std=0)", "AdversarialAutoEncoder", r"`prior_std` must be > 0", prior_std=0),
        c("aae-mixture-latent-1", "AdversarialAutoEncoder(prior='mixture', latent_dim=1)", "AdversarialAutoEncoder",
          r"`latent_dim` must be >= 2", prior="mixture", latent_dim=1),
        case("unknown-variant", "keraszoo.models.get_variant('vea')",
             lambda tmp: _models().get_variant("vea"), ValueError, r"Unknown autoencoder variant 'vea'\. Did you mean 'vae'"),
        case("unknown-preset", "keraszoo.models.resolve_preset('beta_vea')",
             lambda tmp: _models().resolve_preset("beta_vea"), ValueError, r"Unknown model 'beta_vea'\. Did you mean 'beta_vae'"),
    ]


# --------------------------------------------------------------------------- keraszoo.load and friends


def _load(spec, **kwargs):
    def run(tmp):
        import keraszoo

        return keraszoo.load(spec(tmp) if callable(spec) else spec, **kwargs)

    return run


def _tampered(edit):
    """A copy of the tiny saved AutoEncoder under tmp/in, changed by ``edit(folder)``, loaded."""

    def run(tmp):
        import warnings

        import keraszoo

        folder = shared.copy_folder(shared.ae_folder(), inputs(tmp) / "model")
        edit(folder)
        with warnings.catch_warnings():  # Keras warns about each layer it finds no weights for, then keraszoo raises
            warnings.filterwarnings("ignore", message="Skipping nested container", category=UserWarning)
            return keraszoo.load(folder)

    return run


def _set(path, value):
    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _weights_of_vae(folder):
    import shutil

    shutil.copy(shared.vae_folder() / "model.weights.h5", folder / "model.weights.h5")
    shared.refresh_metadata(folder)


def _truncate(refresh):
    def edit(folder):
        weights = folder / "model.weights.h5"
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
        if refresh:
            shared.refresh_metadata(folder)

    return edit


def _load_cases():
    foreign = {"class_name": "system", "module": "os", "config": {"command": "echo hi"}, "registered_name": None}
    lam = {"class_name": "Lambda", "module": "keras.layers", "registered_name": None,
           "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}}}
    return [
        case("load-unknown-name", "keraszoo.load('vae_mnsit') (a typo)",
             _load("vae_mnsit"), ValueError, r"Unknown pretrained model 'vae_mnsit'\. Did you mean 'vae_mnist'"),
        case("load-path-traversal", "keraszoo.load('../../etc/passwd') (a path as a model name)",
             _load("../../etc/passwd"), ValueError, r"No such directory: '\.\./\.\./etc/passwd'"),
        case("load-hub-path-traversal", "keraszoo.load('hf://../../etc')",
             _load("hf://../../etc"), ValueError, r"Malformed Hub spec 'hf://\.\./\.\./etc'"),
        case("info-path-traversal", "keraszoo.info('../weights_manifest')",
             lambda tmp: __import__("keraszoo").info("../weights_manifest"), ValueError,
             r"Unknown pretrained model '\.\./weights_manifest'"),
        case("load-not-a-string", "keraszoo.load(3)", _load(3), ValueError, r"Expected a model name .*got 3"),
        case("load-unknown-source", "keraszoo.load('vae_mnist', source='web')",
             _load("vae_mnist", source="web"), ValueError, r"source must be one of \['auto', 'bundled', 'hub'\]"),
        case("load-unpublished-from-hub", "keraszoo.load('vae_mnist', source='hub') before the Hub copy is published",
             _load("vae_mnist", source="hub"), ValueError, r"has not been published on the Hub yet.*source='bundled'"),
        case("load-file-not-folder", "keraszoo.load(pathlib.Path('config.json')) (a file, not a folder)",
             _load(lambda tmp: (inputs(tmp) / "config.json").write_text("{}") and inputs(tmp) / "config.json"),
             ValueError, r"is not a directory\. Expected a folder written by keraszoo\.save_pretrained"),
        case("load-folder-without-metadata", "keraszoo.load(folder) on a folder without metadata.json",
             _load(lambda tmp: inputs(tmp)), ValueError, r"has no metadata\.json: expected a folder written by keraszoo\.save_pretrained"),
        case("load-revision-for-folder", "keraszoo.load(folder, revision='v2') (revisions are for the Hub)",
             lambda tmp: __import__("keraszoo").load(shared.ae_folder(), revision="v2"), ValueError,
             r"revision='v2' does not apply to a local directory"),
        case("load-config-foreign-class", "keraszoo.load(folder) whose config.json names os.system",
             _tampered(lambda f: shared.edit_config(f, _set(("config", "encoder"), foreign))), ValueError,
             r"Refusing to load .*module 'os'.*Only keras and keraszoo objects"),
        case("load-config-lambda", "keraszoo.load(folder) whose config.json holds a Lambda layer",
             _tampered(lambda f: shared.edit_config(f, _set(("config", "encoder"), lam))), ValueError,
             r"Refusing to load .*a Lambda \(arbitrary Python code\)"),
        case("load-config-not-keraszoo", "keraszoo.load(folder) whose top-level object is a plain keras Sequential",
             _tampered(lambda f: shared.edit_config(f, lambda c: c.update(class_name="Sequential", registered_name="Sequential",
                                                                           module="keras"))),
             ValueError, r"its top-level object is 'Sequential', not a keraszoo model"),
        case("load-config-bad-hyperparameter", "keraszoo.load(folder) whose config.json says latent_dim -3",
             _tampered(lambda f: shared.edit_config(f, _set(("config", "latent_dim"), -3))), ValueError,
             r"Could not rebuild the model .*`latent_dim` must be a positive integer"),
        case("load-weights-of-another-architecture", "keraszoo.load(folder) with the weights file of another model",
             _tampered(_weights_of_vae), ValueError, r"do not fit the architecture in its config\.json"),
        case("load-truncated-weights", "keraszoo.load(folder) whose model.weights.h5 was cut short (digest re-recorded)",
             _tampered(_truncate(refresh=True)), ValueError, r"do not fit the architecture .*truncated file"),
        case("load-tampered-weights", "keraszoo.load(folder) whose model.weights.h5 changed after saving",
             _tampered(_truncate(refresh=False)), ValueError, r"Integrity check failed for 'model\.weights\.h5'"),
        case("load-missing-weights", "keraszoo.load(folder) without its model.weights.h5",
             _tampered(lambda f: (f / "model.weights.h5").unlink()), FileNotFoundError, r"model\.weights\.h5.* does not exist"),
        case("list-models-not-a-pattern", "keraszoo.list_models(3)",
             lambda tmp: __import__("keraszoo").list_models(3), TypeError, r"takes a shell-style pattern"),
    ]


# --------------------------------------------------------------------------- evaluate, save_pretrained, export


def _save(model, **kwargs):
    def run(tmp):
        import keraszoo

        return keraszoo.save_pretrained(model() if callable(model) else model, tmp / "saved", keras_archive=False, **kwargs)

    return run


def _plain_keras_model():
    import keras

    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def _other_cases():
    def evaluate(model, data, **kwargs):
        def run(tmp):
            import keraszoo

            return keraszoo.evaluate(model() if callable(model) else model, data(tmp) if callable(data) else data, **kwargs)

        return run

    return [
        case("evaluate-name-not-model", "keraszoo.evaluate('vae_mnist') (a name instead of a loaded model)",
             evaluate("vae_mnist", "mnist"), TypeError, r"evaluate expects a keraszoo model.*keraszoo\.load\('vae_mnist'\)"),
        case("evaluate-unknown-dataset", "keraszoo.evaluate(model, 'mnsit')",
             evaluate(shared.ae, "mnsit"), ValueError, r"Unknown dataset 'mnsit'"),
        case("evaluate-array-not-pair", "keraszoo.evaluate(model, x) with the images alone, not (x, y)",
             evaluate(shared.ae, lambda tmp: shared.images(4)), TypeError, r"a pair \(x, y\)"),
        case("evaluate-labels-mismatch", "keraszoo.evaluate(model, (x, y)) with 4 images and 3 labels",
             evaluate(shared.ae, lambda tmp: (shared.images(4), np.zeros(3))), ValueError, r"holds 4 images but 3 labels"),
        case("save-pretrained-plain-keras", "keraszoo.save_pretrained(keras.Sequential(...), folder)",
             _save(_plain_keras_model), ValueError, r"save_pretrained expects a keraszoo model"),
        case("save-pretrained-nan-metric", "keraszoo.save_pretrained(model, folder, metrics={'mse': nan})",
             _save(shared.ae, metrics={"mse": float("nan")}), ValueError, r"metrics\.mse: expected a finite number, got nan"),
        case("export-missing-folder", "model.export('missing/folder/model')",
             lambda tmp: shared.ae().export(tmp / "missing" / "model", verbose=False), FileNotFoundError,
             r"The folder '.*missing' of the export target does not exist"),
        case("export-unknown-format", "model.export(path, format='torchscript')",
             lambda tmp: shared.ae().export(tmp / "model", format="torchscript", verbose=False), ValueError,
             r"Unknown export format 'torchscript'"),
        case("export-litert-suffix", "model.export('model.onnx', format='litert')",
             lambda tmp: shared.ae().export(tmp / "model.onnx", format="litert", verbose=False), ValueError,
             r"must end with \.tflite"),
    ]


CASES = _images_cases() + _codes_cases() + _constructor_cases() + _load_cases() + _other_cases()
