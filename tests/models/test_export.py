"""``model.export``: SavedModels that serve the model's own outputs, for every variant and for loaded models.

Every registered variant (and a few configurations that take other code paths,
and two bundled pretrained models) is exported once; ONE subprocess that never
imports keraszoo then loads all the SavedModels with plain ``tf.saved_model.load``
and runs their endpoints on inputs saved as ``.npy``, so the test pays
TensorFlow's start-up once. The LiteRT and ONNX tests run when their runtimes
are installed (``pip install 'keraszoo[export]'``).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keraszoo
from keraszoo.models import export as exporting
from keraszoo.models import list_variants
from tests.models.model_checks import to_numpy

#: the exported variants; conditional ones (requires_labels) are refused, see test_conditional_models_are_refused_clearly.
VARIANTS = sorted(key for key, cls in list_variants().items() if not cls.requires_labels)
CONDITIONAL = sorted(set(list_variants()) - set(VARIANTS))
#: configurations whose endpoints take other code paths than the dense default.
EXTRA_CASES = {
    "vae-conv": ("vae", {"architecture": "conv"}),
    "aae-mixture": ("aae", {"prior": "mixture"}),
    "hvae-bottom_up": ("hvae", {"inference": "bottom_up"}),
}
#: bundled pretrained models, exported as keraszoo.load returns them (never called before export).
PRETRAINED = ("vae_mnist", "conv_ae_mnist")
SAMPLE_CALLS = ((6, 7), (3, 123))
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def make(name, **kwargs):
    small = {"hidden_dims": (32,), "conv_filters": (8, 16)}
    small.update(kwargs)
    return list_variants()[name](input_shape=(28, 28, 1), latent_dim=4, seed=1, **small)


def expected_outputs(model, x, z):
    """What the Keras model answers: the values the served endpoints must reproduce."""
    outputs = {"encode": model.encode(x), "decode": model.decode(z), "reconstruct": model.reconstruct(x),
               "serve": model.reconstruct(x)}
    if model.is_generative:
        for n, seed in SAMPLE_CALLS:
            outputs[f"sample_{n}_{seed}"] = model.sample(n, seed=seed)
    return {key: to_numpy(value) for key, value in outputs.items()}


# The subprocess: plain TensorFlow, no keraszoo. For each case folder it runs every endpoint
# as a function and through its TF Serving signature, and writes served_<endpoint>.npy.
SERVE_SCRIPT = r"""
import json, pathlib, sys
import numpy as np
import tensorflow as tf

report = {}
for folder in map(pathlib.Path, json.loads(sys.argv[1])):
    loaded = tf.saved_model.load(str(folder / "export"))
    x, z = np.load(folder / "x.npy"), np.load(folder / "z.npy")
    signatures = loaded.signatures
    served = {"encode": loaded.encode(x), "decode": loaded.decode(z), "reconstruct": loaded.reconstruct(x),
              "serve": loaded.serve(x), "encode_one": loaded.encode(x[:1])}
    by_signature = {"encode": signatures["encode"](x=tf.constant(x)), "decode": signatures["decode"](z=tf.constant(z)),
                    "reconstruct": signatures["reconstruct"](x=tf.constant(x)),
                    "serve": signatures["serving_default"](x=tf.constant(x))}
    sample_error = None
    if "sample" in signatures:
        for n, seed in json.loads(sys.argv[2]):
            served[f"sample_{n}_{seed}"] = loaded.sample(tf.constant(n, tf.int32), tf.constant(seed, tf.int64))
        n, seed = json.loads(sys.argv[2])[0]
        by_signature[f"sample_{n}_{seed}"] = signatures["sample"](n=tf.constant(n, tf.int32),
                                                                    seed=tf.constant(seed, tf.int64))
        try:
            loaded.sample(tf.constant(0, tf.int32), tf.constant(1, tf.int64))
        except tf.errors.InvalidArgumentError as err:
            sample_error = err.message
    for key, value in served.items():
        np.save(folder / f"served_{key}.npy", value.numpy())
    for key, outputs in by_signature.items():
        assert list(outputs) == ["output_0"], (key, list(outputs))
        np.save(folder / f"signature_{key}.npy", outputs["output_0"].numpy())
    report[folder.name] = {
        "signatures": sorted(signatures),
        "inputs": {key: sorted(fn.structured_input_signature[1]) for key, fn in signatures.items()},
        "sample_error": sample_error,
    }
report["keraszoo_imported"] = sorted(m for m in sys.modules if m.split(".")[0] == "keraszoo")
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``{case: (model facts, expected outputs, report, folder) or the export's exception}``."""
    root = tmp_path_factory.mktemp("exports")
    cases = {name: (lambda name=name: make(name)) for name in VARIANTS}
    cases.update({case: (lambda name=name, kw=kw: make(name, **kw)) for case, (name, kw) in EXTRA_CASES.items()})
    cases.update({name: (lambda name=name: keraszoo.load(name)) for name in PRETRAINED})
    results, folders = {}, []
    rng = np.random.default_rng(0)
    for case, build in cases.items():
        folder = root / case
        folder.mkdir()
        try:
            model = build()
            x = rng.random((5,) + tuple(model.image_shape), dtype=np.float32)
            z = rng.standard_normal((5, model.latent_dim)).astype("float32")
            if not model.has_flat_codes:  # codes that are not flat floats (a VQ-VAE's grid of indices): real ones
                z = to_numpy(model.encode(rng.random((5,) + tuple(model.image_shape), dtype=np.float32)))
            np.save(folder / "x.npy", x)
            np.save(folder / "z.npy", z)
            path = model.export(folder / "export", verbose=False)
            assert path == folder / "export"
            facts = {"generative": model.is_generative, "code_shape": model.code_shape}
            results[case] = (facts, expected_outputs(model, x, z))
            folders.append(str(folder))
        except Exception as err:  # noqa: BLE001 - reported by the case's own test
            results[case] = err
        keras.backend.clear_session(free_memory=False)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, json.dumps(folders), json.dumps(SAMPLE_CALLS)],
                          capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("keraszoo_imported") == [], "the serving subprocess must not need keraszoo"
    return {case: value if isinstance(value, Exception) else (*value, report[case], root / case)
            for case, value in results.items()}


def check_case(served, case):
    result = served[case]
    if isinstance(result, Exception):
        raise result
    facts, expected, report, folder = result
    endpoints = {"serve", "encode", "decode", "reconstruct"} | ({"sample"} if facts["generative"] else set())
    assert set(report["signatures"]) == endpoints | {"serving_default"}
    assert report["inputs"]["encode"] == ["x"] and report["inputs"]["decode"] == ["z"]
    for key, value in expected.items():
        np.testing.assert_allclose(np.load(folder / f"served_{key}.npy"), value, **TOLERANCE, err_msg=f"{case}: {key}")
        signature_file = folder / f"signature_{key}.npy"
        if signature_file.exists():  # the TF Serving route gives the same values
            np.testing.assert_allclose(np.load(signature_file), value, **TOLERANCE, err_msg=f"{case}: signature {key}")
    np.testing.assert_allclose(np.load(folder / "served_encode_one.npy"), expected["encode"][:1], **TOLERANCE,
                               err_msg="the batch size is free")
    assert expected["encode"].shape == (5,) + tuple(facts["code_shape"])
    if facts["generative"]:
        assert report["inputs"]["sample"] == ["n", "seed"]
        assert expected["sample_6_7"].shape[0] == 6 and expected["sample_3_123"].shape[0] == 3
        assert not np.allclose(expected["sample_6_7"][:3], expected["sample_3_123"]), "seeds must matter"
        assert "must be >= 1" in report["sample_error"]


@pytest.mark.parametrize("name", VARIANTS)
def test_saved_model_endpoints_equal_the_keras_model(served, name):
    check_case(served, name)


@pytest.mark.parametrize("name", CONDITIONAL)
@pytest.mark.parametrize("format", ["tf_saved_model", "litert", "onnx"])
def test_conditional_models_are_refused_clearly(name, format, tmp_path):
    target = tmp_path / {"tf_saved_model": "export", "litert": "m.tflite", "onnx": "m.onnx"}[format]
    with pytest.raises(NotImplementedError, match="is conditional .* cannot be exported yet"):
        make(name).export(target, format=format, verbose=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", sorted(EXTRA_CASES))
def test_saved_model_of_other_code_paths(served, case):
    check_case(served, case)


@pytest.mark.parametrize("name", PRETRAINED)
def test_a_loaded_pretrained_model_exports(served, name):
    # keraszoo.load returns a model that was never called: Keras' own export refused it.
    check_case(served, name)


# --------------------------------------------------------------------------- the target path and the errors


@pytest.fixture(scope="module")
def small_ae():
    return make("ae")


def test_the_format_and_the_path_are_checked_before_anything_is_written(small_ae, tmp_path):
    with pytest.raises(ValueError, match="Unknown export format 'keras'; expected one of 'tf_saved_model', 'litert'"):
        small_ae.export(tmp_path / "m", format="keras")
    with pytest.raises(ValueError, match=r"must end with \.tflite"):
        small_ae.export(tmp_path / "m.tfl", format="litert")
    with pytest.raises(ValueError, match=r"must end with \.onnx"):
        small_ae.export(tmp_path / "m", format="onnx")
    with pytest.raises(ValueError, match="named like a .onnx file; pass format='onnx'"):
        small_ae.export(tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        small_ae.export(tmp_path / "missing" / "m")
    with pytest.raises(ValueError, match="takes no argument.s. input_signature .the endpoints' signatures follow"):
        small_ae.export(tmp_path / "m", input_signature=[keras.InputSpec(shape=(None, 28, 28, 1))])
    with pytest.raises(TypeError, match="expects a keraszoo autoencoder"):
        exporting.export_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_only_an_earlier_export(small_ae, tmp_path):
    target = tmp_path / "m"
    target.mkdir()  # an empty folder is filled, whatever overwrite says
    small_ae.export(target, verbose=False, overwrite=False)
    assert (target / "saved_model.pb").is_file()
    with pytest.raises(FileExistsError, match="already exists"):
        small_ae.export(target, verbose=False, overwrite=False)
    vae = make("vae")
    vae.export(target, verbose=False)  # overwrite=True by default, like keras.Model.export
    assert (target / "saved_model.pb").is_file()
    keep = tmp_path / "not_an_export"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an exported model; refusing to replace it"):
        small_ae.export(keep, verbose=False, overwrite=True)
    assert (keep / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "not_an_export"]


def test_a_failed_export_leaves_nothing_behind(small_ae, tmp_path, monkeypatch):
    target = tmp_path / "m"
    small_ae.export(target, verbose=False)
    before = sorted(p.relative_to(target) for p in target.rglob("*"))

    def broken(model, path, options=None):
        (path / "variables").mkdir(parents=True)
        (path / "saved_model.pb").write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporting, "_write_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        small_ae.export(target, verbose=False)
    with pytest.raises(RuntimeError, match="disk full"):
        small_ae.export(tmp_path / "fresh", verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder, no partial export"
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert (target / "saved_model.pb").read_bytes() != b"partial"


def test_a_missing_converter_names_the_package_to_install(small_ae, tmp_path, monkeypatch):
    monkeypatch.setitem(exporting.CONVERTER_PACKAGES, "onnx", "keraszoo_missing_converter")
    with pytest.raises(ImportError, match=r"needs the keraszoo_missing_converter converter.*pip install "
                                          r"keraszoo_missing_converter .or pip install 'keraszoo\[export\]'"):
        small_ae.export(tmp_path / "m.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []


def test_verbose_export_prints_the_endpoints(tmp_path, capsys):
    make("vae").export(tmp_path / "m")
    out = capsys.readouterr().out
    assert f"Saved a TensorFlow SavedModel at '{tmp_path / 'm'}'" in out
    assert "encode(x: float32[batch, 28, 28, 1]) -> float32[batch, 4]" in out
    assert "sample(n: int32, seed: int64) -> float32[n, 28, 28, 1]" in out


# --------------------------------------------------------------------------- LiteRT and ONNX (optional converters)


@pytest.mark.parametrize("name", VARIANTS)
def test_litert_export_serves_the_reconstruction(name, tmp_path):
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    model = make(name)
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    path = model.export(tmp_path / "m.tflite", format="litert", verbose=False)
    runner = interpreter.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    np.testing.assert_allclose(runner(x=x)["output_0"], to_numpy(model.reconstruct(x)), **TOLERANCE)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


@pytest.mark.parametrize("name", VARIANTS)
def test_onnx_export_serves_the_reconstruction(name, tmp_path):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = make(name)
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    target = tmp_path / "m.onnx"
    try:
        model.export(target, format="onnx", verbose=False)
    except ValueError as err:
        # tf2onnx has no converter for Log1p (ops.logaddexp of the ladder's precision weighting): a clear error.
        assert name == "hvae" and "Log1p" in str(err) and "tf_saved_model or litert" in str(err), err
        assert list(tmp_path.iterdir()) == [], "an unconvertible model leaves no invalid .onnx behind"
        return
    session = onnxruntime.InferenceSession(str(target))
    assert [i.name for i in session.get_inputs()] == ["x"]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], to_numpy(model.reconstruct(x)), **TOLERANCE)
