"""Bad inputs of anomaly detection: ``model.anomaly_score``, ``keraszoo.anomaly.Detector`` and the commands
``keraszoo anomaly fit`` / ``keraszoo anomaly score``.

The commands read images as ``keraszoo finetune --data`` does, so an empty folder, an unreadable file and
mixed sizes get finetune's messages. Inputs are prepared under ``tmp / "in"``; outputs point elsewhere.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli


def case(id, area, description, run, error, match, **kwargs):
    return Case(id=id, area=area, description=description, run=run, error=error, match=match, **kwargs)


def cli(id, description, argv, error, match, **kwargs):
    """A ``keraszoo`` command line; items of ``argv`` may be callables ``item(tmp)``."""

    def run(tmp):
        return run_cli([item(tmp) if callable(item) else item for item in argv])

    return case(id, "CLI", description, run, error, match, **kwargs)


@functools.cache
def detector_folder():
    """A detector on the tiny AutoEncoder (8x8x1), calibrated on 8 images, saved once per process."""
    from keraszoo.anomaly import Detector

    x = np.random.default_rng(0).random((8, *shared.SHAPE), dtype=np.float32)
    return Detector(shared.ae(), epochs=0).fit(x).save(shared.shared_folder() / "detector")


def _detector(tmp):
    return detector_folder()


def _tampered_detector(tmp):
    """A copy of the detector whose calibration file was changed after saving (its sha256 no longer matches)."""
    folder = shared.copy_folder(detector_folder(), inputs(tmp) / "det")
    with open(folder / "anomaly.npz", "ab") as f:
        f.write(b"\0")
    return folder




def _out(name):
    return lambda tmp: tmp / "out" / name


def _fit(data, *extra, model=lambda tmp: shared.ae_folder()):
    return ["anomaly", "fit", "--data", data, "--model", model, "--out", _out("det"), *extra]


def _score(images, detector=_detector, output="scores.csv"):
    return ["anomaly", "score", detector, images, "-o", _out(output)]


def _users_folder(tmp):
    mine = inputs(tmp) / "mine"
    mine.mkdir(parents=True)
    (mine / "README.md").write_text("my notes\n")
    shared.png(inputs(tmp) / "images" / "a.png", (8, 8))


def _api_cases():
    def score(method, **kwargs):
        return lambda tmp: shared.ae().anomaly_score(shared.images(2), method, **kwargs)

    def unfitted(tmp):
        from keraszoo.anomaly import Detector

        return Detector(shared.ae()).predict(shared.images(2))

    def bad_fpr(tmp):
        from keraszoo.anomaly import Detector

        return Detector(shared.ae(), fpr=1.5).fit(shared.images(4))

    def plain_model(tmp):
        from keraszoo.anomaly import Detector

        return Detector.load(shared.ae_folder())

    from keraszoo.anomaly import NotFittedError

    area = "public API"
    return [
        case("anomaly-score-unknown-method", area, "model.anomaly_score(x, 'elb') (a typo)", score("elb"), ValueError,
             r"Unknown anomaly score method 'elb'\. Did you mean 'elbo'\? AutoEncoder computes reconstruction, latent"),
        case("anomaly-score-unavailable-method", area, "AutoEncoder.anomaly_score(x, 'elbo') (no likelihood)",
             score("elbo"), ValueError, r"AutoEncoder has no 'elbo' anomaly score: .*has no likelihood bound"),
        case("anomaly-score-latent-unfitted", area, "model.anomaly_score(x, 'latent') before fit_anomaly_reference",
             score("latent"), ValueError, r"fit them first with model\.fit_anomaly_reference\(x_normal\)"),
        case("anomaly-score-batch-size-zero", area, "model.anomaly_score(x, batch_size=0)", score(None, batch_size=0),
             ValueError, r"`batch_size` must be a positive integer"),
        case("anomaly-detector-predict-before-fit", area, "Detector(model).predict(x) before fit", unfitted,
             NotFittedError, r"This Detector is not fitted yet: call fit\(x_normal\) first, or Detector\.load"),
        case("anomaly-detector-fpr-out-of-range", area, "Detector(model, fpr=1.5).fit(x)", bad_fpr, ValueError,
             r"`fpr` must be a number in \(0, 1\); received 1\.5"),
        case("anomaly-detector-load-a-plain-model", area, "Detector.load(<a save_pretrained folder, no detector>)",
             plain_model, ValueError, r"holds a keraszoo model but no anomaly detector .*keraszoo anomaly fit"),
    ]


def _cli_cases():
    return [
        cli("cli-anomaly-fit-missing-data", "keraszoo anomaly fit --data missing/ --out det",
            _fit(lambda tmp: inputs(tmp) / "missing"), ErrorExit, r"^keraszoo: error: --data .*missing: no such file or folder\.$"),
        cli("cli-anomaly-fit-empty-folder", "keraszoo anomaly fit --data folder/ --out det (no images in it)",
            _fit(shared.folder_with()), ErrorExit, r"^keraszoo: error: --data .*images: No images \(\.png, \.jpg, \.jpeg, \.bmp, \.gif\) "
            r"found under"),
        cli("cli-anomaly-fit-unreadable-image", "keraszoo anomaly fit --data folder/ --out det (a .png that is not an image)",
            _fit(shared.folder_with(("ok.png", (8, 8)), ("broken.png", b"not a png"))), ErrorExit, r"broken\.png"),
        cli("cli-anomaly-fit-mixed-sizes", "keraszoo anomaly fit --data folder/ --model vae --out det (8x8 and 9x9 images)",
            _fit(shared.folder_with(("a.png", (8, 8)), ("b.png", (9, 9))), model="vae"), ErrorExit,
            r"Images under '.*images' have different sizes \(\[\(8, 8\), \(9, 9\)\]\)"),
        cli("cli-anomaly-fit-wrong-size", "keraszoo anomaly fit --data folder/ --model MODEL --out det (9x9, 8x8 model)",
            _fit(shared.folder_with(("a.png", (9, 9)))), ErrorExit,
            r"1 of 1 images under '.*images' are not 8x8 as expected: a\.png is 9x9"),
        cli("cli-anomaly-fit-unknown-model", "keraszoo anomaly fit --data folder/ --model vea --out det (a typo)",
            _fit(shared.folder_with(("a.png", (8, 8))), model="vea"), ErrorExit, r"Unknown model 'vea'\. Did you mean 'vae'"),
        cli("cli-anomaly-fit-unavailable-method", "keraszoo anomaly fit ... --model AE_FOLDER --method elbo",
            _fit(shared.folder_with(("a.png", (8, 8)), ("b.png", (8, 8))), "--method", "elbo"), ErrorExit,
            r"AutoEncoder has no 'elbo' anomaly score: .*has no likelihood bound"),
        cli("cli-anomaly-fit-fpr-out-of-range", "keraszoo anomaly fit ... --fpr 5", _fit("x", "--fpr", "5"), UsageExit,
            r"^keraszoo anomaly fit: error: argument --fpr: expected a number in \(0, 1\), got '5'$"),
        case("cli-anomaly-fit-into-a-users-folder", "CLI", "keraszoo anomaly fit --out <a folder holding the user's README.md>",
             lambda tmp: run_cli(["anomaly", "fit", "--data", inputs(tmp) / "images", "--model", shared.ae_folder(),
                                  "--out", inputs(tmp) / "mine"]), ErrorExit,
             r"--out .*mine is not empty and keraszoo did not write it: README\.md would be in the way; .*--overwrite",
             prepare=_users_folder),
        cli("cli-anomaly-score-not-a-detector", "keraszoo anomaly score MODEL_FOLDER images/ -o s.csv (a model, no detector)",
            _score(shared.folder_with(("a.png", (8, 8))), detector=lambda tmp: shared.ae_folder()), ErrorExit,
            r"is not an anomaly detector's folder .*keraszoo anomaly fit --out"),
        cli("cli-anomaly-score-tampered", "keraszoo anomaly score DET images/ -o s.csv (anomaly.npz changed after saving)",
            _score(shared.folder_with(("a.png", (8, 8))), detector=_tampered_detector), ErrorExit, r"anomaly\.npz"),
        cli("cli-anomaly-score-empty-folder", "keraszoo anomaly score DET folder/ -o s.csv (no images in it)",
            _score(shared.folder_with()), ErrorExit, r"No images \(\.png, \.jpg, \.jpeg, \.bmp, \.gif\) found under"),
        cli("cli-anomaly-score-mixed-sizes", "keraszoo anomaly score DET folder/ -o s.csv (8x8 and 9x9 images)",
            _score(shared.folder_with(("a.png", (8, 8)), ("b.png", (9, 9)))), ErrorExit,
            r"1 of 2 images under '.*images' are not 8x8 as expected: b\.png is 9x9"),
        cli("cli-anomaly-score-unreadable-image", "keraszoo anomaly score DET folder/ -o s.csv (a .png that is not an image)",
            _score(shared.folder_with(("ok.png", (8, 8)), ("broken.png", b"not a png"))), ErrorExit, r"broken\.png"),
        cli("cli-anomaly-score-not-csv", "keraszoo anomaly score DET folder/ -o scores.txt",
            _score(shared.folder_with(("a.png", (8, 8))), output="scores.txt"), UsageExit,
            r"^keraszoo anomaly score: error: argument -o/--output: '.*scores\.txt' must end with \.csv$"),
    ]


CASES = _api_cases() + _cli_cases()
