"""One way to make a model (``keraszoo.create_model``), and plain Keras loading keraszoo's ``.keras`` files."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keraszoo
from keraszoo.models import VAE
from keraszoo.models import create_model
from keraszoo.weights import manifest

SMALL = {"input_shape": (8, 8, 1), "latent_dim": 2, "hidden_dims": (4,), "seed": 0}


def _python(code, cwd):
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# --------------------------------------------------------------------------- create_model
def test_create_model_takes_a_variant_key_or_class_name_with_overrides():
    model = create_model("vae", **SMALL)
    assert type(model) is VAE and model.latent_dim == 2 and model.image_shape == (8, 8, 1)
    assert type(create_model("VAE", **SMALL)) is VAE
    assert keraszoo.create_model is create_model


def test_create_model_takes_a_preset_and_overrides_win_over_it():
    preset, settings = next(iter(VAE.presets.items()))
    model = create_model(preset, **SMALL)
    assert type(model) is VAE
    for arg, value in settings.items():
        assert getattr(model, arg) == value, (preset, arg)
    if "beta" in settings:
        assert create_model(preset, **SMALL, beta=0.5).beta == 0.5


def test_create_model_builds_a_zoo_model_untrained_or_pretrained():
    entry = manifest.get_entry("vae_mnist")
    untrained = create_model("vae_mnist")
    pretrained = create_model("vae_mnist", pretrained=True)
    loaded = keraszoo.load("vae_mnist")
    assert type(untrained) is type(pretrained) is VAE
    assert untrained.latent_dim == entry["model"]["config"]["latent_dim"] == pretrained.latent_dim
    assert untrained.get_config() == pretrained.get_config()  # the published architecture
    assert untrained.count_params() == pretrained.count_params()
    for mine, theirs in zip(pretrained.get_weights(), loaded.get_weights()):  # the weights keraszoo.load loads
        np.testing.assert_array_equal(mine, theirs)
    assert any(not np.array_equal(a, b) for a, b in zip(untrained.get_weights(), pretrained.get_weights()))
    assert pretrained.optimizer is not None  # compiled, as keraszoo.load's models are
    assert create_model("vae_mnist", latent_dim=3).latent_dim == 3  # overrides over the zoo configuration


def test_create_model_refuses_unknown_names_and_weights_it_does_not_have():
    with pytest.raises(ValueError, match=r"Unknown model 'vea'\. Did you mean .*'vae'"):
        create_model("vea")
    with pytest.raises(ValueError, match=r"Did you mean .*'vae_mnist'"):
        create_model("vae_mnst")
    with pytest.raises(ValueError, match=r"'vae' is a variant or preset, without weights.*vae_mnist"):
        create_model("vae", pretrained=True)
    with pytest.raises(ValueError, match=r"no overrides \(latent_dim\) with pretrained=True"):
        create_model("vae_mnist", pretrained=True, latent_dim=3)
    with pytest.raises(ValueError, match="Model names are strings"):
        create_model(VAE)
    with pytest.raises(ValueError, match="no_such_argument"):  # the constructor's (Keras') refusal
        create_model("vae", no_such_argument=1)


# --------------------------------------------------------------------------- plain Keras
@pytest.mark.parametrize("imports", ["import keras, keraszoo", "import keraszoo, keras"])
def test_a_saved_keras_file_loads_in_a_fresh_process_with_keras_and_keraszoo_imported(imports, tmp_path):
    _python("""
        import keraszoo.models
        model = keraszoo.models.VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), seed=0)
        model.save("m.keras")
        import numpy as np
        np.save("z.npy", np.asarray(model.decode(np.ones((1, 2), "float32"))))
        """, tmp_path)
    out = _python(f"""
        import sys
        {imports}
        import numpy as np
        assert "keraszoo.models" in sys.modules
        model = keras.saving.load_model("m.keras")
        np.testing.assert_allclose(np.asarray(model.decode(np.ones((1, 2), "float32"))), np.load("z.npy"), atol=1e-6)
        print(type(model).__name__)
        """, tmp_path)
    assert out.strip() == "VAE"


def test_importing_keraszoo_alone_loads_no_keras(tmp_path):
    out = _python("""
        import sys
        import keraszoo
        print(sorted(m for m in ("keras", "tensorflow", "keraszoo.models") if m in sys.modules))
        """, tmp_path)
    assert out.strip() == "[]"


def test_overrides_of_a_zoo_architecture_are_todays_arguments():
    """The manifest's configs predate ``config_version``; an override ``reconstruction_loss="mse"`` is today's squared
    error, not the version-1 "mse" that old configs migrate to "gaussian"."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = create_model("vae_mnist", reconstruction_loss="mse", hidden_dims=(8,), latent_dim=2)
    assert model.reconstruction_loss == "mse" and not model.has_likelihood and model.has_posterior
