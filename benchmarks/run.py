"""keraszoo's speed against references measured in the same run, as one table and one JSON file.

    python benchmarks/run.py [--quick] [--only NAME,...] [--out DIR]

Every ratio compares two things measured side by side in this process (or, for the
mirrored case, in one subprocess), taking turns epoch by epoch, so that the numbers
of one machine on one afternoon can be compared with each other; absolute figures
(images/s, ms, s, MiB) are recorded with the machine they come from. BENCHMARKS.md
says what each number means and how it is measured. ``--quick`` runs every case on
tiny sizes for the smoke test: its numbers mean nothing (its JSON says ``"quick": true``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import pathlib
import platform
import re
import socket
import sys
import tempfile
import time
import traceback

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make the checkout importable
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks import figures as measure  # noqa: E402
from benchmarks import report  # noqa: E402
from keraszoo.utils import atomic_write_text  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
LATENCY_BATCHES = (1, 256)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one run. FULL took about 10 minutes on the 2-core development machine (budget: 15)."""

    train_images: int  # images per epoch of every training comparison
    rounds: int  # interleaved rounds (epochs per side) after the warm-up epoch
    sweep_images: int
    sweep_rounds: int
    latency_calls: dict  # batch size -> timed calls per API function
    list_runs: int
    load_runs: int
    startup_warmup: bool  # one untimed start before the timed ones (page cache, .pyc files)
    batch_size: int = 128


FULL = Settings(train_images=8192, rounds=7, sweep_images=8192, sweep_rounds=5,
                latency_calls={1: 200, 256: 40}, list_runs=5, load_runs=3, startup_warmup=True)
QUICK = Settings(train_images=256, rounds=1, sweep_images=256, sweep_rounds=1,
                 latency_calls={1: 5, 256: 2}, list_runs=1, load_runs=1, startup_warmup=False)


def say(line=""):
    print(line, flush=True)


class Run:
    """What one run has measured so far: figures, ratios, skipped cases, errors."""

    def __init__(self, settings, data_dir):
        self.settings = settings
        self.data_dir = data_dir
        self.figures = {}
        self.ratios = {}
        self.skipped = {}
        self.errors = {}
        self.case_wall_s = {}
        self._x = None
        self._y = None
        self.data_source = None

    def training_images(self):
        """The first ``train_images`` MNIST training digits, float32 in [0, 1], ``(N, 28, 28, 1)``."""
        if self._x is None:
            self._x, self.data_source = load_digits(self.settings.train_images, self.data_dir)
            self._y = load_digits.labels
        return self._x

    def training_labels(self):
        """The digits of :meth:`training_images` (``(N,)`` int64): what a conditional variant trains on."""
        self.training_images()
        return self._y

    def compare(self, ratio_name, sides, rounds=None, **extra):
        """Interleaves ``sides`` (numerator first), records both figures and their ratio."""
        rates = measure.interleave(sides, rounds or self.settings.rounds, log=say)
        for side in sides:
            self.figures[f"{side.name}_images_per_s"] = measure.summary(
                rates[side.name], "images/s", batch_size=self.settings.batch_size,
                images_per_epoch=side.images_per_epoch)
        self.ratios[ratio_name] = measure.ratio(f"{sides[0].name}_images_per_s", f"{sides[1].name}_images_per_s",
                                                self.figures, **extra)
        say(f"  {ratio_name} = {self.ratios[ratio_name]['value']:.3f}")


def load_digits(n, data_dir=None):
    """``(images, where they came from)``: MNIST's training split, else the bundled sample, tiled.

    The archive is looked up the way ``keraszoo.data`` does (``--data-dir``, then
    ``$KERASZOO_DATA_DIR``), then in the checkout's ``../shared/data``. Throughput does
    not depend on which digits are trained on, so without the archive the 500 digits
    that ship with keraszoo are repeated to ``n`` images, with a note.
    """
    from keraszoo.data import DATA_DIR_ENV
    from keraszoo.data import find_npz
    from keraszoo.samples import load_mnist_sample

    folders = [d for d in (data_dir, os.environ.get(DATA_DIR_ENV), REPO_ROOT.parent / "shared" / "data") if d]
    for folder in folders:
        path = find_npz("mnist", folder)
        if path is not None:
            with np.load(path, allow_pickle=False) as archive:
                x, y = archive["x_train"][:n], archive["y_train"][:n]
            load_digits.labels = y.astype("int64")
            return x.reshape(len(x), 28, 28, 1).astype("float32") / 255.0, f"{path} (x_train[:{len(x)}])"
    sample, labels = load_mnist_sample()
    load_digits.labels = np.resize(np.asarray(labels, "int64"), (n,))
    say(f"note: no mnist.npz in {', '.join(map(str, folders)) or 'any configured folder'} "
        f"(set {DATA_DIR_ENV} or pass --data-dir); training on the {len(sample)} bundled sample digits, "
        f"repeated to {n} images.")
    return np.resize(sample, (n,) + sample.shape[1:]), f"bundled MNIST sample ({len(sample)} digits) repeated"


def fresh_session():
    """Drops the previous case's models, so that cases do not slow each other down."""
    import keras

    keras.backend.clear_session()
    gc.collect()


# --------------------------------------------------------------------------- cases


def case_keras_io(run):
    """train_vae_vs_keras_io: keraszoo's conv VAE, ``compile(); fit()``, vs the keras.io example's."""
    from benchmarks import references
    from keraszoo.models import VAE

    x = run.training_images()
    ours = VAE(input_shape=(28, 28, 1), latent_dim=2, architecture="conv", hidden_dims=(16,), seed=0)
    ours.compile()
    theirs = references.keras_io_vae(latent_dim=2)
    bs = run.settings.batch_size
    run.compare("train_vae_vs_keras_io", [measure.keras_side("train_conv_vae_keraszoo", ours, x, bs),
                                          measure.keras_side("train_conv_vae_keras_io", theirs, x, bs)])


def variant_cases():
    """``{key: (class, kwargs)}``: every registered variant with its defaults, and the conv AE."""
    from keraszoo.models import AutoEncoder
    from keraszoo.models import list_variants

    cases = {key: (cls, {}) for key, cls in sorted(list_variants().items())}
    cases["conv_ae"] = (AutoEncoder, {"architecture": "conv"})
    return cases


def case_tape(run, key):
    """train_<key>_vs_tape: keraszoo's ``fit`` vs a hand-written tape step over the same networks and loss."""
    from benchmarks import references

    cls, kwargs = variant_cases()[key]
    x = run.training_images()
    y = run.training_labels() if cls.requires_labels else None  # a conditional variant's digits
    ours = cls(input_shape=(28, 28, 1), seed=0, **kwargs)
    ours.compile()
    reference = references.tape_trainer(cls(input_shape=(28, 28, 1), seed=0, **kwargs))
    bs = run.settings.batch_size
    run.compare(f"train_{key}_vs_tape", [measure.keras_side(f"train_{key}_keraszoo", ours, x, bs, y=y),
                                         measure.keras_side(f"train_{key}_tape", reference, x, bs, y=y)],
                model=f"{cls.__name__}(input_shape=(28, 28, 1), {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")


def case_latency(run):
    """<api>_<n>_p50_ms / _p95_ms: the public inference API of the pretrained vae_mnist on numpy inputs."""
    import keraszoo
    from keraszoo.samples import load_mnist_sample

    model = keraszoo.load("vae_mnist")
    digits, _ = load_mnist_sample()
    rng = np.random.default_rng(0)
    calls, repeats, apis = {}, {}, {}
    for n in LATENCY_BATCHES:
        x = np.ascontiguousarray(np.resize(digits, (n,) + digits.shape[1:]))
        z = rng.standard_normal((n, model.latent_dim)).astype("float32")
        for api, fn, arg in (("encode", model.encode, x), ("decode", model.decode, z),
                             ("reconstruct", model.reconstruct, x),
                             ("predict", lambda a: model.predict(a, verbose=0), x)):
            # np.asarray: the result in hand, as a NumPy array, is what the caller waits for.
            calls[f"{api}_{n}"] = lambda fn=fn, arg=arg: np.asarray(fn(arg))
            repeats[f"{api}_{n}"] = run.settings.latency_calls[n]
            apis[f"{api}_{n}"] = (api, n)
    times = measure.time_calls(calls, repeats)
    for name, seconds in times.items():
        api, n = apis[name]
        p50, p95 = measure.percentiles_ms(seconds)
        call = "model.predict(x, verbose=0)" if api == "predict" else f"model.{api}({'z' if api == 'decode' else 'x'})"
        for q, value in (("p50", p50), ("p95", p95)):
            run.figures[f"{name}_{q}_ms"] = {"value": value, "unit": "ms", "call": call, "images": n,
                                             "calls": len(seconds), "model": "vae_mnist", "percentile": q}
        say(f"  {call:28s} n={n:<4d} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms")


def keraszoo_command():
    """The installed ``keraszoo`` script next to this Python, else ``python -m keraszoo``."""
    script = pathlib.Path(sys.executable).with_name("keraszoo")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "keraszoo"]


LIST_IMPORTS = (
    "import contextlib, io, json, sys\n"
    "from keraszoo.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    rc = main(['list'])\n"
    "print(json.dumps({'rc': rc, 'modules': [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]}))\n"
)


def case_startup(run):
    """keraszoo_list_s, import_and_load_s, demo_peak_rss_mib: fresh processes, as a user starts them."""
    env = measure.subprocess_env(REPO_ROOT)
    cli = keraszoo_command()
    s = run.settings

    def timed(cmd, runs):
        if s.startup_warmup:
            measure.run_checked(cmd, env)
        return [measure.run_checked(cmd, env)[0] for _ in range(runs)]

    _, out = measure.run_checked([sys.executable, "-c", LIST_IMPORTS], env)
    imported = json.loads(out.strip().splitlines()[-1])["modules"]
    run.figures["keraszoo_list_s"] = measure.summary(
        timed(cli + ["list"], s.list_runs), "s", command=" ".join(["keraszoo", "list"]), argv=cli + ["list"],
        imports_tensorflow="tensorflow" in imported, heavy_modules_imported=imported)
    load = [sys.executable, "-c", "import keraszoo; keraszoo.load('vae_mnist')"]
    run.figures["import_and_load_s"] = measure.summary(
        timed(load, s.load_runs), "s", command="python -c \"import keraszoo; keraszoo.load('vae_mnist')\"")
    with tempfile.TemporaryDirectory() as tmp:
        rss, wall = measure.peak_rss_mib(cli + ["demo", "--out", tmp, "-q"], env)
    run.figures["demo_peak_rss_mib"] = {"value": rss, "unit": "MiB", "command": "keraszoo demo --out <tmp> -q",
                                        "wall_s": wall}
    for name in ("keraszoo_list_s", "import_and_load_s", "demo_peak_rss_mib"):
        say(f"  {name} = {run.figures[name]['value']:.3f} {run.figures[name]['unit']}")


def case_batch_sweep(run):
    """fit_dense_vae_batch_<B>_images_per_s: the default dense VAE's fit at six batch sizes, interleaved."""
    from keraszoo.models import VAE

    s = run.settings
    x = load_digits(s.sweep_images, run.data_dir)[0] if s.sweep_images != s.train_images else run.training_images()
    sides = []
    for bs in BATCH_SIZES:
        model = VAE(input_shape=(28, 28, 1), seed=0)
        model.compile()
        sides.append(measure.keras_side(f"fit_dense_vae_batch_{bs}", model, x, bs))
    rates = measure.interleave(sides, s.sweep_rounds, log=say)
    for side, bs in zip(sides, BATCH_SIZES):
        run.figures[f"{side.name}_images_per_s"] = measure.summary(
            rates[side.name], "images/s", batch_size=bs, images_per_epoch=len(x))


def case_mirrored(run):
    """mirrored_2cpu_vs_1: MirroredStrategy over 2 logical CPUs vs no strategy, in a fresh process."""
    s = run.settings
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "mirrored.py"), "--images", str(s.train_images),
           "--rounds", str(s.rounds), "--batch-size", str(s.batch_size)]
    _, out = measure.run_checked(cmd, measure.subprocess_env(REPO_ROOT), timeout=900)
    result = json.loads(out.split("RESULT", 1)[1])
    for side, values in result["rates"].items():
        run.figures[f"train_dense_vae_{side}_images_per_s"] = measure.summary(
            values, "images/s", batch_size=s.batch_size, images_per_epoch=s.train_images,
            replicas=result["replicas"] if side == "mirrored_2cpu" else 1)
    run.ratios["mirrored_2cpu_vs_1"] = measure.ratio(
        "train_dense_vae_mirrored_2cpu_images_per_s", "train_dense_vae_no_strategy_images_per_s", run.figures)
    say(f"  mirrored_2cpu_vs_1 = {run.ratios['mirrored_2cpu_vs_1']['value']:.3f}")


def case_pythae(run):
    """pythae_vae_vs_keraszoo: keraszoo's dense VAE vs pythae's (PyTorch), same MLP, each in its own process."""
    from benchmarks import process_side

    python = run.pythae_python or sys.executable
    missing = process_side.missing(python)
    if missing is not None:
        run.skipped["pythae_vae_vs_keraszoo"] = (f"torch and pythae are optional and not importable by {python} "
                                                 f"({missing}); give --pythae-python")
        say(f"  skipped: {run.skipped['pythae_vae_vs_keraszoo']}")
        return
    # PyTorch and TensorFlow in one process crash (a segfault): each side trains in a process of its own, and the
    # two still take turns epoch by epoch (benchmarks/process_side.py).
    x = run.training_images()
    bs = run.settings.batch_size
    sides = []
    with tempfile.TemporaryDirectory() as tmp:
        images = pathlib.Path(tmp) / "images.npy"
        np.save(images, x)
        try:
            sides.append(process_side.ProcessSide("train_mlp_vae_keraszoo", "keraszoo_vae", images, len(x), bs, 16))
            sides.append(process_side.ProcessSide("train_mlp_vae_pythae", "pythae_vae", images, len(x), bs, 16,
                                                  python=python))
            run.compare("pythae_vae_vs_keraszoo", sides, note="keraszoo images/s over pythae's: > 1 means keraszoo is "
                        "faster; each side in its own process, taking turns epoch by epoch",
                        pythae_python=python)
        finally:
            for side in sides:
                side.close()


def _fit_call_side(name, model, inputs, batch_size, images, check_data):
    """A side that times the whole ``model.fit(inputs, epochs=1, check_data=...)`` call.

    Unlike :func:`benchmarks.figures.keras_side` (the epoch alone), this counts what
    ``fit`` does before its first epoch, where the checks of an array run.
    """
    is_array = isinstance(inputs, np.ndarray)

    def run_epoch():
        start = time.perf_counter()
        model.fit(inputs, batch_size=batch_size if is_array else None, epochs=1, verbose=0, shuffle=is_array,
                  check_data=check_data)
        return time.perf_counter() - start

    return measure.Side(name, run_epoch, images)


def _drain_side(name, dataset, images):
    """A side that reads every batch of ``dataset`` once, inside TensorFlow."""
    import tensorflow as tf

    def run_epoch():
        start = time.perf_counter()
        dataset.reduce(tf.constant(0.0), lambda total, batch: total + batch[0, 0, 0, 0]).numpy()
        return time.perf_counter() - start

    return measure.Side(name, run_epoch, images)


def case_data_checks(run):
    """data_checks_<array|dataset|pipeline>_vs_none: fit with its training-data checks vs check_data=False, interleaved.

    The dataset is a plain tf.data pipeline (a user's own), which ``fit`` checks batch by batch;
    keraszoo.data's pipelines had their arrays checked when they were built and get no per-batch check.
    """
    import tensorflow as tf

    from keraszoo.models import VAE
    from keraszoo.models import checked_data
    from keraszoo.models import image_checks

    x = run.training_images()
    bs = run.settings.batch_size
    plain = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=0).batch(bs).prefetch(tf.data.AUTOTUNE)
    inputs = {"array": x, "dataset": plain}
    sides = []
    for kind, values in inputs.items():
        model = VAE(input_shape=(28, 28, 1), seed=0)  # one model per input: both sides run the same train function
        model.compile()
        sides += [_fit_call_side(f"fit_{kind}_checked", model, values, bs, len(x), True),
                  _fit_call_side(f"fit_{kind}_unchecked", model, values, bs, len(x), False)]
    rates = measure.interleave(sides, run.settings.rounds, log=say)
    for side in sides:
        run.figures[f"{side.name}_images_per_s"] = measure.summary(
            rates[side.name], "images/s", batch_size=bs, images_per_epoch=len(x),
            call=f"model.fit({side.name.split('_')[1]}, epochs=1, check_data={side.name.endswith('_checked')})",
            timed="the whole fit call")
    for kind in inputs:
        name = f"data_checks_{kind}_vs_none"
        run.ratios[name] = measure.ratio(f"fit_{kind}_checked_images_per_s", f"fit_{kind}_unchecked_images_per_s",
                                         run.figures, note="checked over unchecked: 1 means the checks cost nothing")
        say(f"  {name} = {run.ratios[name]['value']:.3f}")
    # The pipeline alone, drained in TensorFlow (Dataset.reduce: no Python per batch), checked and not:
    # what the per-batch check costs the input pipeline, without the training step's noise.
    checked = checked_data.TrainingData((28, 28, 1), "VAE.fit").inputs(inputs["dataset"])
    pipes = [_drain_side("pipeline_checked", checked, len(x)), _drain_side("pipeline_unchecked", inputs["dataset"], len(x))]
    rates = measure.interleave(pipes, run.settings.rounds, log=say)
    for side in pipes:
        run.figures[f"{side.name}_images_per_s"] = measure.summary(
            rates[side.name], "images/s", batch_size=bs, images_per_epoch=len(x),
            call="dataset.reduce(...) over from_tensor_slices(x).shuffle().batch(128).prefetch(), with and without the check map")
    run.ratios["data_checks_pipeline_vs_none"] = measure.ratio(
        "pipeline_checked_images_per_s", "pipeline_unchecked_images_per_s", run.figures,
        note="the input pipeline alone, checked over unchecked")
    say(f"  data_checks_pipeline_vs_none = {run.ratios['data_checks_pipeline_vs_none']['value']:.3f}")
    seconds = measure.time_calls({"check": lambda: image_checks.check_image_array(x, (28, 28, 1), "VAE.fit(x)")},
                                 {"check": max(3, run.settings.rounds)})["check"]
    p50, _ = measure.percentiles_ms(seconds)
    run.figures["fit_array_check_ms"] = {"value": p50, "unit": "ms", "images": len(x), "percentile": "p50",
                                         "calls": len(seconds), "call": "image_checks.check_image_array(x, ...)"}
    say(f"  fit_array_check_ms = {p50:.2f} ms for {len(x)} images")


def _tape_case(key):
    def case(run):
        case_tape(run, key)

    case.__doc__ = f"train_{key}_vs_tape: keraszoo's fit vs a hand-written GradientTape step, same networks and loss."
    return case


def all_cases():
    """``{name: function(run)}`` in the order a full run measures them (``--only`` picks among them)."""
    cases = {"startup": case_startup, "latency": case_latency, "keras_io": case_keras_io}
    for key in variant_cases():
        cases[f"tape_{key}"] = _tape_case(key)
    cases.update({"batch_sweep": case_batch_sweep, "data_checks": case_data_checks, "mirrored": case_mirrored,
                  "pythae": case_pythae})
    return cases


# --------------------------------------------------------------------------- report


def machine_block():
    from keraszoo.training import runtime

    hardware = runtime.hardware_info()
    return {"host": socket.gethostname(), "platform": platform.platform(), **hardware,
            "versions": runtime.versions(), "load_average_at_start": list(os.getloadavg())}


def result_path(out_dir, quick, partial):
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname()) or "host"
    suffix = ("-quick" if quick else "") + ("-partial" if partial else "")
    return pathlib.Path(out_dir) / f"{datetime.date.today().isoformat()}-{host}{suffix}.json"


def parse_args(argv):
    names = list(all_cases())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=f"cases (for --only): {', '.join(names)}; 'tape' selects every tape_* case")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test, not a measurement")
    parser.add_argument("--only", default=None, help="comma-separated cases to run (default: all)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help=f"folder of the JSON result (default: {RESULTS_DIR})")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist.npz (default: $KERASZOO_DATA_DIR, ../shared/data)")
    parser.add_argument("--pythae-python", default=None,
                        help="the Python that has torch and pythae, for the pythae case (default: this one)")
    args = parser.parse_args(argv)
    args.cases = names
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        expanded = []
        for w in wanted:
            matches = [n for n in names if n.startswith("tape_")] if w == "tape" else [w]
            unknown = [m for m in matches if m not in names]
            if unknown:
                parser.error(f"unknown case {w!r}; known: {', '.join(names)}, tape")
            expanded += [m for m in matches if m not in expanded]
        args.cases = [n for n in names if n in expanded]
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    start = time.perf_counter()
    run = Run(settings, args.data_dir)
    run.pythae_python = args.pythae_python
    machine = machine_block()
    say(f"keraszoo benchmarks{' (quick: the numbers mean nothing)' if args.quick else ''} on {machine['description']}, "
        f"load average {machine['load_average_at_start'][0]:.2f}")
    cases = all_cases()
    for name in args.cases:
        say(f"[{name}] {cases[name].__doc__.splitlines()[0] if cases[name].__doc__ else ''}".rstrip())
        case_start = time.perf_counter()
        try:
            cases[name](run)
        except Exception as err:  # noqa: BLE001 - one broken case must not lose the other measurements
            run.errors[name] = "".join(traceback.format_exception_only(type(err), err)).strip()[-2000:]
            say(f"  FAILED: {run.errors[name]}")
            traceback.print_exc()
        fresh_session()
        run.case_wall_s[name] = time.perf_counter() - case_start
        say(f"  ({run.case_wall_s[name]:.1f} s)")
    machine["load_average_at_end"] = list(os.getloadavg())
    wall = time.perf_counter() - start
    table = report.format_table(report.table_rows(run.ratios, run.figures, run.skipped))
    result = {
        "schema": 1, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": bool(args.quick), "cases": args.cases, "wall_time_s": wall, "case_wall_s": run.case_wall_s, "machine": machine,
        "settings": dataclasses.asdict(settings), "training_data": run.data_source,
        "ratios": run.ratios, "figures": run.figures, "skipped": run.skipped, "errors": run.errors, "table": table,
    }
    path = result_path(args.out, args.quick, partial=args.cases != list(cases))
    atomic_write_text(path, json.dumps(result, indent=1, default=str) + "\n")
    say()
    say(table)
    say()
    say(f"{len(run.ratios)} ratios, {len(run.figures)} figures in {wall:.0f} s on {machine['description']}; wrote {path}")
    if run.errors:
        say(f"FAILED cases: {', '.join(run.errors)}")
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
