"""``keraszoo export``: a SavedModel that serves the model, and errors that leave nothing behind.

In process through ``keraszoo.cli.main`` (the tiny saved models of conftest),
plus one run of the real entry point on a bundled pretrained model.
"""

import numpy as np
import pytest

from tests.cli.conftest import assert_one_line_error
from tests.cli.conftest import assert_usage_error
from tests.cli.conftest import run_cli


def to_numpy(t):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(t))


def test_export_writes_a_saved_model_that_serves_the_model(cli, tiny_models, tmp_path):
    import tensorflow as tf

    import keraszoo

    out = tmp_path / "vae"
    code, stdout, err = cli("export", tiny_models.vae, "-o", out)
    assert code == 0, err
    assert f"Wrote a TensorFlow SavedModel to {out}" in stdout
    assert "sample(n: int32, seed: int64) -> float32[n, 28, 28, 1]" in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["vae"], "no staging folder left next to the export"
    model = keraszoo.load(tiny_models.vae)
    served = tf.saved_model.load(str(out))
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(served.serve(x).numpy(), to_numpy(model.reconstruct(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.encode(x).numpy(), to_numpy(model.encode(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.sample(5, 3).numpy(), to_numpy(model.sample(5, seed=3)), rtol=1e-5, atol=1e-6)


def test_export_replaces_an_earlier_export_only_with_force(cli, tiny_models, tmp_path):
    out = tmp_path / "model"
    out.mkdir()  # an empty folder is no export to protect
    code, _, err = cli("export", tiny_models.ae, "-o", out, "-q")
    assert code == 0, err
    code, stdout, err = cli("export", tiny_models.vae, "-o", out)
    assert code == 1 and stdout == ""  # refused before the model is loaded
    assert_one_line_error(err, f"'{out}' already exists; remove it or pass --force to replace it.")
    code, _, err = cli("export", tiny_models.vae, "-o", out, "--force", "-q")
    assert code == 0, err
    import tensorflow as tf

    assert "sample" in tf.saved_model.load(str(out)).signatures  # now the VAE's

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, _, err = cli("export", tiny_models.ae, "-o", mine, "--force", "-q")
    assert code == 1
    assert_one_line_error(err, "is a folder that is not an exported model; refusing to replace it")
    assert (mine / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "model"]


def test_bad_targets_fail_before_the_model_is_loaded(cli, tiny_models, tmp_path):
    code, stdout, err = cli("export", tiny_models.ae, "-o", tmp_path / "missing" / "m")
    assert code == 1 and "Loading" not in stdout
    assert_one_line_error(err, "The folder", "missing", "does not exist; create it first")
    code, _, err = cli("export", tiny_models.ae, "--format", "litert", "-o", tmp_path / "m.tfl")
    assert code == 2
    assert err.strip() == f"keraszoo export: error: The litert format writes one .tflite file; the path must end with .tflite, " \
                          f"received '{tmp_path / 'm.tfl'}'."
    code, _, err = cli("export", tiny_models.ae, "-o", tmp_path / "m.onnx")
    assert code == 2 and "add --format onnx" in err
    code, _, err = cli("export", tiny_models.ae, "--format", "keras", "-o", tmp_path / "m")
    assert code == 2
    assert_usage_error(err, "export", "invalid choice: 'keras'")
    code, _, err = cli("export", "no_such_model", "-o", tmp_path / "m")
    assert code == 1
    assert_one_line_error(err, "no_such_model")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_converter_is_one_line_naming_the_package(cli, tiny_models, tmp_path, monkeypatch):
    from keraszoo.cli import export as command

    monkeypatch.setitem(command.CONVERTER_PACKAGES, "onnx", "keraszoo_missing_converter")
    code, stdout, err = cli("export", tiny_models.ae, "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 1 and "Loading" not in stdout
    assert_one_line_error(err, "onnx export needs the keraszoo_missing_converter converter",
                          "pip install keraszoo_missing_converter")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_is_one_line_and_leaves_nothing(cli, tiny_models, tmp_path, monkeypatch):
    from keraszoo.models import export as exporting

    def broken(model, path, options=None):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporting, "_write_saved_model", broken)
    code, _, err = cli("export", tiny_models.ae, "-o", tmp_path / "m")
    assert code == 1
    assert_one_line_error(err, "RuntimeError: disk full (run with --debug for the traceback)")
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_command_and_its_examples(cli):
    code, out, _ = cli("export", "--help")
    assert code == 0 and out.startswith("usage: keraszoo export")
    assert "examples:\n  keraszoo export vae_mnist -o" in out and "--force" in out
    code, out, _ = cli("--help")
    assert code == 0 and "\n    export" in out


def test_the_command_line_checks_are_the_library_checks():
    from keraszoo.cli import export as command
    from keraszoo.models import export as exporting

    # One table and one check (keraszoo.export_targets), not copies kept in step by hand.
    assert command.FORMATS is exporting.FORMATS
    assert command.check_target is exporting.check_target
    assert command.CONVERTER_PACKAGES is exporting.CONVERTER_PACKAGES


@pytest.mark.parametrize("name", ["conv_ae_mnist"])
def test_export_a_bundled_model_through_the_entry_point(name, tmp_path):
    out = tmp_path / name
    proc = run_cli("export", name, "-o", out, "--source", "bundled")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"Wrote a TensorFlow SavedModel to {out}" in proc.stdout
    assert "encode(x: float32[batch, 28, 28, 1]) -> float32[batch, 32]" in proc.stdout
    assert "sample(" not in proc.stdout  # an autoencoder has no prior
    assert (out / "saved_model.pb").is_file()
