"""Bad command lines: ``keraszoo`` run in-process by :func:`tests.bad_inputs.registry.run_cli`.

Every case must end with exit status 1 (``ErrorExit``) or 2 (``UsageExit``, argparse
and the commands' own usage checks) and one line on stderr, without a traceback.
Input files are prepared under ``tmp / "in"``; outputs point elsewhere in tmp,
so a file written before the failure counts as left behind.
"""

from __future__ import annotations

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli

AREA = "CLI"


def case(id, description, argv, error, match, **kwargs):
    """``argv``: a list whose items may be callables ``item(tmp)`` (a prepared file, a model folder)."""

    def run(tmp):
        return run_cli([item(tmp) if callable(item) else item for item in argv])

    return Case(id=id, area=AREA, description=description, run=run, error=error, match=match, **kwargs)


# --------------------------------------------------------------------------- argv items


def AE(tmp):
    """The tiny saved AutoEncoder (8x8x1 -> 2)."""
    return shared.ae_folder()


def VAE(tmp):
    """The tiny saved VAE (8x8x1 -> 3)."""
    return shared.vae_folder()


def out(name):
    """An output path outside in/: nothing may be written there when the command fails."""
    return lambda tmp: tmp / "out" / name


def missing(name):
    return lambda tmp: inputs(tmp) / name


def png(name, shape=(8, 8), value=0):
    return lambda tmp: shared.png(inputs(tmp) / name, shape, value)


def raw(name, content: bytes):
    def make(tmp):
        path = inputs(tmp) / name
        path.write_bytes(content)
        return path

    return make


def npy(name, array):
    def make(tmp):
        path = inputs(tmp) / name
        np.save(path, array)
        return path

    return make


def npz(name, **arrays):
    def make(tmp):
        path = inputs(tmp) / name
        np.savez(path, **arrays)
        return path

    return make


def folder(name, *files):
    def make(tmp):
        path = inputs(tmp) / name
        path.mkdir(parents=True, exist_ok=True)
        for file_name, content in files:
            (path / file_name).write_bytes(content)
        return path

    return make


def under_a_file(name):
    """``in/a_file/<name>``: a path whose parent is a regular file."""

    def make(tmp):
        blocker = inputs(tmp) / "a_file"
        blocker.write_text("not a folder")
        return blocker / name

    return make


# --------------------------------------------------------------------------- the cases


def _inference_cases():
    return [
        case("cli-reconstruct-missing-image", "keraszoo reconstruct MODEL missing.png -o r.png",
             ["reconstruct", AE, missing("missing.png"), "-o", out("r.png")], ErrorExit,
             r"^keraszoo: error: image '.*missing\.png' does not exist\.$"),
        case("cli-reconstruct-unreadable-image", "keraszoo reconstruct MODEL broken.png -o r.png (not an image)",
             ["reconstruct", AE, raw("broken.png", b"not a png"), "-o", out("r.png")], ErrorExit,
             r"^keraszoo: error: Cannot read image '.*broken\.png'"),
        case("cli-reconstruct-wrong-size", "keraszoo reconstruct MODEL big.png -o r.png (9x9 for an 8x8 model, no --resize)",
             ["reconstruct", AE, png("big.png", (9, 9)), "-o", out("r.png")], ErrorExit,
             r"is 9x9 pixels; the model expects 8x8 .*--resize"),
        case("cli-reconstruct-color-into-gray", "keraszoo reconstruct MODEL red.png -o r.png (color image, grayscale model)",
             ["reconstruct", AE, png("red.png", (8, 8, 3), (255, 0, 0)), "-o", out("r.png")], ErrorExit,
             r"has 3 channel\(s\), expected 1.*--color-mode grayscale"),
        case("cli-reconstruct-empty-folder", "keraszoo reconstruct MODEL folder/ -o r.png (no images in it)",
             ["reconstruct", AE, folder("empty"), "-o", out("r.png")], ErrorExit, r"No images .* found under"),
        case("cli-reconstruct-unknown-model", "keraszoo reconstruct vae_mnsit a.png -o r.png (a typo)",
             ["reconstruct", "vae_mnsit", png("a.png"), "-o", out("r.png")], ErrorExit,
             r"^keraszoo: error: Unknown pretrained model 'vae_mnsit'\. Did you mean 'vae_mnist'"),
        case("cli-reconstruct-path-traversal",
             "keraszoo reconstruct ../../no_such_model_dir a.png -o r.png (a relative path that is no model)",
             ["reconstruct", "../../no_such_model_dir", png("a.png"), "-o", out("r.png")], ErrorExit,
             r"^keraszoo: error: No such directory: '\.\./\.\./no_such_model_dir'\.$"),
        case("cli-reconstruct-folder-not-a-model", "keraszoo reconstruct some_folder/ a.png -o r.png (not a save_pretrained folder)",
             ["reconstruct", folder("not_a_model", ("notes.txt", b"hi")), png("a.png"), "-o", out("r.png")], ErrorExit,
             r"has no metadata\.json: expected a folder written by keraszoo\.save_pretrained"),
        case("cli-reconstruct-bad-output-suffix", "keraszoo reconstruct MODEL a.png -o r.jpg",
             ["reconstruct", AE, png("a.png"), "-o", out("r.jpg")], UsageExit,
             r"^keraszoo reconstruct: error: argument -o/--output: '.*r\.jpg' must end with \.png or \.npy$"),
        case("cli-reconstruct-output-under-a-file", "keraszoo reconstruct MODEL a.png -o a_file/r.png (the folder is a file)",
             ["reconstruct", AE, png("a.png"), "-o", under_a_file("r.png")], UsageExit,
             r"cannot be written: '.*a_file' is a file, not a folder"),
        case("cli-reconstruct-missing-output", "keraszoo reconstruct MODEL a.png (no -o)",
             ["reconstruct", AE, png("a.png")], UsageExit, r"the following arguments are required: -o/--output"),
        case("cli-reconstruct-zero-columns", "keraszoo reconstruct MODEL a.png -o r.png --cols 0",
             ["reconstruct", AE, png("a.png"), "-o", out("r.png"), "--cols", "0"], UsageExit,
             r"argument --cols: expected a positive integer, got '0'"),
        case("cli-reconstruct-unknown-color-mode", "keraszoo reconstruct MODEL a.png -o r.png --color-mode cmyk",
             ["reconstruct", AE, png("a.png"), "-o", out("r.png"), "--color-mode", "cmyk"], UsageExit,
             r"argument --color-mode: invalid choice: 'cmyk'"),
        case("cli-encode-corrupt-npy", "keraszoo encode MODEL x.npy -o codes.npy (not a NumPy file)",
             ["encode", AE, raw("x.npy", b"\x93NUMPYxx garbage"), "-o", out("codes.npy")], ErrorExit, r"Cannot read .*x\.npy"),
        case("cli-encode-npz-without-images", "keraszoo encode MODEL x.npz -o codes.npy (arrays 'a' and 'b', no --key)",
             ["encode", AE, npz("x.npz", a=np.zeros((1, 8, 8)), b=np.zeros((1, 8, 8))), "-o", out("codes.npy")], ErrorExit,
             r"holds \['a', 'b'\]; name the images x_train or x or images, or pass key \(--key\)"),
        case("cli-encode-float-0-255", "keraszoo encode MODEL x.npy -o codes.npy (float pixels 0..255)",
             ["encode", AE, npy("x.npy", np.full((2, 8, 8), 200.0)), "-o", out("codes.npy")], ErrorExit,
             r"Float x must be scaled to \[0, 1\], found 200\.\.200"),
        case("cli-encode-bad-output-suffix", "keraszoo encode MODEL a.png -o codes.txt",
             ["encode", AE, png("a.png"), "-o", out("codes.txt")], UsageExit, r"must end with \.npy or \.npz"),
        case("cli-decode-wrong-width", "keraszoo decode MODEL codes.npy -o d.png (codes of width 5, latent_dim 3)",
             ["decode", VAE, npy("codes.npy", np.zeros((2, 5), np.float32)), "-o", out("d.png")], ErrorExit,
             r"holds an array of shape \(2, 5\); .* decodes codes of shape \(N, 3\)"),
        case("cli-decode-nan-codes", "keraszoo decode MODEL codes.npy -o d.png (NaN codes)",
             ["decode", VAE, npy("codes.npy", np.full((2, 3), np.nan, np.float32)), "-o", out("d.png")], ErrorExit,
             r"contains NaN or infinite codes"),
        case("cli-decode-string-codes", "keraszoo decode MODEL codes.npy -o d.png (an array of strings)",
             ["decode", VAE, npy("codes.npy", np.array([["a", "b", "c"]])), "-o", out("d.png")], ErrorExit,
             r"holds <U1 values; expected float latent codes"),
        case("cli-decode-not-npy", "keraszoo decode MODEL codes.txt -o d.png",
             ["decode", VAE, raw("codes.txt", b"1 2 3"), "-o", out("d.png")], UsageExit, r"CODES must be a \.npy or \.npz file"),
        case("cli-decode-missing-codes", "keraszoo decode MODEL missing.npy -o d.png",
             ["decode", VAE, missing("missing.npy"), "-o", out("d.png")], ErrorExit, r"codes file '.*missing\.npy' does not exist"),
        case("cli-sample-not-generative", "keraszoo sample MODEL -o s.png with a plain AutoEncoder",
             ["sample", AE, "-o", out("s.png")], ErrorExit, r"is not a generative model: it has no prior to sample from"),
        case("cli-sample-zero", "keraszoo sample MODEL -n 0 -o s.png",
             ["sample", VAE, "-n", "0", "-o", out("s.png")], UsageExit, r"argument -n/--num: expected a positive integer, got '0'"),
        case("cli-sample-not-a-number", "keraszoo sample MODEL -n many -o s.png",
             ["sample", VAE, "-n", "many", "-o", out("s.png")], UsageExit, r"argument -n/--num: expected a positive integer, got 'many'"),
        case("cli-sample-float-seed", "keraszoo sample MODEL --seed 1.5 -o s.png",
             ["sample", VAE, "--seed", "1.5", "-o", out("s.png")], UsageExit, r"argument --seed: invalid int value: '1\.5'"),
        case("cli-sample-more-than-memory", "keraszoo sample MODEL -n 1000000000000 -o s.npy",
             ["sample", VAE, "-n", "1000000000000", "-o", out("s.npy")], ErrorExit,
             r"-n 1000000000000 would return .*One call returns at most 268,435,456 values"),
        case("cli-interpolate-one-step", "keraszoo interpolate MODEL a.png b.png --steps 1 -o i.png",
             ["interpolate", VAE, png("a.png"), png("b.png"), "--steps", "1", "-o", out("i.png")], UsageExit,
             r"argument --steps: needs at least 2 steps \(both end points\), got 1"),
        case("cli-interpolate-missing-image", "keraszoo interpolate MODEL a.png missing.png -o i.png",
             ["interpolate", VAE, png("a.png"), missing("missing.png"), "-o", out("i.png")], ErrorExit,
             r"image '.*missing\.png' does not exist"),
    ]


def _export_cases():
    def existing(tmp):
        target = inputs(tmp) / "serving"
        target.mkdir()
        (target / "README.txt").write_text("someone else's files")
        return target

    return [
        case("cli-export-missing-folder", "keraszoo export vae_mnist -o missing/folder/1",
             ["export", "vae_mnist", "-o", out("missing/1")], ErrorExit,
             r"The folder '.*missing' of the export target does not exist; create it first"),
        case("cli-export-existing-target", "keraszoo export MODEL -o existing_folder (not empty, no --force)",
             ["export", AE, "-o", existing], ErrorExit, r"already exists; remove it or pass --force to replace it"),
        case("cli-export-force-over-other-files", "keraszoo export MODEL -o existing_folder --force (a folder that is no SavedModel)",
             ["export", AE, "-o", existing, "--force"], ErrorExit, r"is a folder that is not an exported model; refusing to replace it"),
        case("cli-export-unknown-format", "keraszoo export MODEL --format torchscript -o m",
             ["export", AE, "--format", "torchscript", "-o", out("m")], UsageExit, r"argument --format: invalid choice: 'torchscript'"),
        case("cli-export-suffix-mismatch", "keraszoo export MODEL --format litert -o m.onnx",
             ["export", AE, "--format", "litert", "-o", out("m.onnx")], UsageExit,
             r"^keraszoo export: error: The litert format writes one \.tflite file"),
        case("cli-export-unknown-model", "keraszoo export nope_model -o m",
             ["export", "nope_model", "-o", lambda tmp: tmp / "m"], ErrorExit, r"Unknown pretrained model 'nope_model'"),
    ]


def _other_cases():
    return [
        case("cli-unknown-command", "keraszoo frobnicate", ["frobnicate"], UsageExit,
             r"^keraszoo: error: argument COMMAND: invalid choice: 'frobnicate'"),
        case("cli-no-command", "keraszoo (no command)", [], UsageExit, r"the following arguments are required: COMMAND"),
        case("cli-unknown-flag", "keraszoo list --bogus", ["list", "--bogus"], UsageExit, r"unrecognized arguments: --bogus"),
        case("cli-info-unknown-model", "keraszoo info nope", ["info", "nope"], ErrorExit,
             r"^keraszoo: error: Unknown pretrained model 'nope'"),
        case("cli-info-folder-not-a-model", "keraszoo info some_folder/ (no metadata.json)",
             ["info", folder("plain", ("a.txt", b"x"))], ErrorExit, r"has no metadata\.json"),
        case("cli-evaluate-unknown-dataset", "keraszoo evaluate MODEL --data mnsit",
             ["evaluate", AE, "--data", "mnsit"], ErrorExit, r"Unknown dataset 'mnsit'"),
        case("cli-evaluate-no-archive", "keraszoo evaluate MODEL --data mnist --data-source npz --data-dir empty/",
             ["evaluate", AE, "--data", "mnist", "--data-source", "npz", "--data-dir", folder("empty")], ErrorExit,
             r"^keraszoo: error: Dataset 'mnist' is not available offline\. No archive mnist\.npz in .* To fix it, either:"),
        case("cli-evaluate-record-folder", "keraszoo evaluate some_folder/ --record (only manifest names can be recorded)",
             ["evaluate", AE, "--record"], UsageExit, r"--record writes the metrics into the manifest; it needs a manifest name"),
        case("cli-demo-unknown-model", "keraszoo demo --model nope", ["demo", "--model", "nope", "--out", out("demo")], ErrorExit,
             r"Unknown pretrained model 'nope'"),
        case("cli-demo-out-is-a-file", "keraszoo demo --out a_file", ["demo", "--out", under_a_file("")], ErrorExit,
             r"--out '.*a_file' exists and is not a directory"),
        case("cli-push-missing-folder", "keraszoo push missing/ org/repo",
             ["push", missing("missing"), "org/repo"], ErrorExit,
             r"is not a directory; expected a folder written by keraszoo\.save_pretrained"),
        case("cli-manifest-not-json", "keraszoo manifest check --manifest broken.json",
             ["manifest", "check", "--manifest", raw("broken.json", b"{not json")], ErrorExit, r"is not valid JSON"),
    ]


CASES = _inference_cases() + _export_cases() + _other_cases()
