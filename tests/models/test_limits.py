"""The API bounds what it allocates (issue 24): ``sample``, ``interpolate`` and ``decode`` return at most
``checks.MAX_VALUES_PER_CALL`` values per call, as ``keraszoo sample -n`` does, and seeds lie in ``[0, 2**32)``."""

import keras
import numpy as np
import pytest

from keraszoo.models import VAE
from keraszoo.models import AdversarialAutoEncoder
from keraszoo.models import AutoEncoder
from keraszoo.models import ConditionalVAE
from keraszoo.models import HierarchicalVAE
from keraszoo.models import checks
from keraszoo.models.numeric import to_numpy

SHAPE = (8, 8, 1)
GENERATIVE = (VAE, HierarchicalVAE, AdversarialAutoEncoder)


def _tiny(cls, **kwargs):
    return cls(input_shape=SHAPE, latent_dim=2, hidden_dims=(4,), seed=0, **kwargs)


@pytest.fixture(scope="module")
def vae():
    return _tiny(VAE)


def test_the_cap_in_numbers():
    assert checks.MAX_VALUES_PER_CALL == 2**28 and checks.SEED_LIMIT == 2**32
    assert checks.MAX_VALUES_PER_CALL // (28 * 28) == 342_392  # the MNIST images of one call, as documented


@pytest.mark.parametrize("n", [2 * 10**6, 10**7, 10**12])
def test_sample_beyond_the_cap_is_refused_before_anything_is_allocated(n):
    """The sizes of the issue (a bare ResourceExhaustedError, a SIGSEGV under a 16 GiB address-space limit)."""
    mnist = VAE(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(4,), seed=0)
    most = checks.MAX_VALUES_PER_CALL // 784
    with pytest.raises(ValueError, match=rf"VAE\.sample\(n={n}\) would return {n:,} images of 28x28x1.*One call returns "
                                         rf"at most 268,435,456 values \(1 GiB\), {most:,} images of this shape: "
                                         rf"sample in batches of at most {most:,}, each with its own seed"):
        mnist.sample(n)


@pytest.mark.parametrize("cls", GENERATIVE, ids=lambda c: c.__name__)
def test_every_generative_variant_keeps_to_the_cap(monkeypatch, cls):
    model = _tiny(cls)
    monkeypatch.setattr(checks, "MAX_VALUES_PER_CALL", 64 * 5)  # five 8x8x1 images per call
    assert to_numpy(model.sample(5, seed=0)).shape == (5, *SHAPE)
    with pytest.raises(ValueError, match=r"sample\(n=6\) would return 6 images.*at most 5"):
        model.sample(6, seed=0)


def test_interpolate_and_decode_keep_to_the_cap(monkeypatch):
    model = _tiny(AutoEncoder)
    monkeypatch.setattr(checks, "MAX_VALUES_PER_CALL", 64 * 10)
    x = np.full((2, *SHAPE), 0.5, "float32")
    assert to_numpy(model.interpolate(x[0], x[1], steps=10)).shape == (10, *SHAPE)
    with pytest.raises(ValueError, match=r"interpolate of 1 image pair\(s\) in 11 steps would return 11 images.*"
                                         r"ask for at most 10 images per call \(pairs x steps\)"):
        model.interpolate(x[0], x[1], steps=11)
    with pytest.raises(ValueError, match=r"interpolate of 2 image pair\(s\) in 6 steps would return 12 images"):
        model.interpolate(x, x, steps=6)
    assert to_numpy(model.decode(np.zeros((10, 2), "float32"))).shape == (10, *SHAPE)
    with pytest.raises(ValueError, match=r"AutoEncoder\.decode of 11 codes would return 11 images.*decode them in "
                                         r"batches of at most 10 \(z\[i:i \+ 10\]\)"):
        model.decode(np.zeros((11, 2), "float32"))
    with pytest.raises(ValueError, match=r"decode of 11 codes"):
        model.decode_logits(np.zeros((11, 2), "float32"))


def test_a_billion_interpolation_steps_are_refused_at_once(vae):
    with pytest.raises(ValueError, match=r"in 1000000000 steps would return 1,000,000,000 images"):
        vae.interpolate(np.zeros(SHAPE, "float32"), np.ones(SHAPE, "float32"), steps=10**9)


@pytest.mark.parametrize("seed", [2**64, 2**32, -1, -(2**63)])
def test_seeds_outside_uint32_are_refused(vae, seed):
    with pytest.raises(ValueError, match=rf"`seed` must be an integer in \[0, 2\*\*32\) = \[0, 4294967295\].*"
                                         rf"received {seed}\."):
        vae.sample(2, seed=seed)


@pytest.mark.parametrize("seed", [1.5, "0", True, [0]])
def test_seeds_that_are_not_integers_are_refused(vae, seed):
    with pytest.raises(ValueError, match=r"`seed` must be either an integer or an instance of `SeedGenerator` "
                                         r"\(keras\.random; an integer in \[0, 2\*\*32\)\); received "):
        vae.sample(2, seed=seed)


@pytest.mark.parametrize("cls", [*GENERATIVE, ConditionalVAE], ids=lambda c: c.__name__)
def test_every_sampler_checks_its_seed(cls):
    model = _tiny(cls)
    kwargs = {"labels": 3} if model.requires_labels else {}
    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[0, 2\*\*32\)"):
        model.sample(2, seed=2**64, **kwargs)


def test_seeds_in_range_draw_reproducibly(vae):
    for seed in (0, 2**32 - 1, np.uint32(7), np.int64(2**31)):
        a, b = to_numpy(vae.sample(3, seed=seed)), to_numpy(vae.sample(3, seed=seed))
        np.testing.assert_array_equal(a, b)
    assert to_numpy(vae.sample(2, seed=keras.random.SeedGenerator(1))).shape == (2, *SHAPE)


def test_the_command_line_uses_the_same_cap(monkeypatch, tmp_path, capsys):
    import keraszoo
    from keraszoo.cli import main

    folder = keraszoo.save_pretrained(_tiny(VAE), tmp_path / "vae", keras_archive=False)
    monkeypatch.setattr(checks, "MAX_VALUES_PER_CALL", 64 * 4)
    assert main(["sample", str(folder), "-n", "4", "-o", str(tmp_path / "four.npy")]) == 0
    assert main(["sample", str(folder), "-n", "5", "-o", str(tmp_path / "five.npy")]) == 1
    err = capsys.readouterr().err
    assert "-n 5 would return 5 images of 8x8x1" in err and "ask for at most 4 per run, each run with its own --seed" in err
    assert not (tmp_path / "five.npy").exists()
