"""How the numbers are measured: interleaved training epochs, call latencies, subprocess timings.

The host these benchmarks run on is noisy (another job can halve the throughput for a
minute), so two things being compared are never measured one after the other: every
side of a comparison lives in the same process and they take turns, one epoch each
(A, B, A, B, ...), after a warm-up epoch each (the first epoch traces and compiles the
training step). A slow spell then hits both sides about equally, and the median over the
rounds ignores the rounds it hits hardest.

Nothing here knows which models are compared; :mod:`benchmarks.run` builds the cases.
Keras is imported inside the functions, so :mod:`benchmarks.mirrored` can split the CPU
into logical devices before TensorFlow initializes.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time


class Side:
    """One side of a comparison: ``run_epoch()`` trains one epoch and returns its seconds."""

    def __init__(self, name, run_epoch, images_per_epoch):
        self.name = name
        self.run_epoch = run_epoch
        self.images_per_epoch = images_per_epoch


def keras_side(name, model, x, batch_size, y=None):
    """A side that runs ``model.fit(x, y, batch_size=..., epochs=1)``, the way a user trains.

    ``y``: the labels a conditional variant trains on (``None`` for the others).

    The time is that of the epoch alone (``on_epoch_begin`` to ``on_epoch_end``, as
    Keras' progress bar counts it): the per-call set-up of ``fit`` (data adapter,
    callback list) is the same on both sides of every comparison and would only add
    noise.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        seconds = None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            EpochTimer.seconds = time.perf_counter() - self._start

    timer = EpochTimer()

    def run_epoch():
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True, callbacks=[timer])
        return EpochTimer.seconds

    return Side(name, run_epoch, len(x))


def interleave(sides, rounds, warmup=1, log=None):
    """``{side name: [images/s of each round]}``: warm-up epochs, then ``rounds`` rounds of A, B, ...

    Each round trains one epoch of every side in the same order; a side's figure is
    the median over its rounds and a ratio is the ratio of two medians (see
    :func:`summary` and :func:`ratio`).
    """
    for side in sides:
        for _ in range(warmup):
            side.run_epoch()
    rates = {side.name: [] for side in sides}
    for r in range(rounds):
        for side in sides:
            seconds = side.run_epoch()
            rates[side.name].append(side.images_per_epoch / seconds)
        if log is not None:
            log("    round {}/{}: {}".format(
                r + 1, rounds, ", ".join(f"{name} {values[-1]:.0f}" for name, values in rates.items())))
    return rates


def summary(values, unit, **extra):
    """A figure: the median of ``values`` with its unit, the values themselves and their spread.

    ``rel_spread`` is ``(max - min) / median``: 0.1 means the rounds ranged over 10 %
    of the median.
    """
    values = [float(v) for v in values]
    median = statistics.median(values)
    figure = {"value": median, "unit": unit, "median_of": len(values), "values": values,
              "min": min(values), "max": max(values),
              "rel_spread": (max(values) - min(values)) / median if median else math.nan}
    figure.update(extra)
    return figure


def ratio(numerator, denominator, figures, **extra):
    """``median(numerator) / median(denominator)`` of two figures named in ``figures``.

    ``per_round`` holds the ratio of each round's pair (the two epochs measured next to
    each other), whose spread says how far the ratio itself can be trusted.
    """
    a, b = figures[numerator], figures[denominator]
    per_round = [x / y for x, y in zip(a["values"], b["values"])]
    out = {"value": a["value"] / b["value"], "numerator": numerator, "denominator": denominator,
           "per_round": per_round}
    out.update(extra)
    return out


def percentiles_ms(seconds):
    """``(p50, p95)`` in milliseconds of a list of durations in seconds (linear interpolation)."""
    ordered = sorted(seconds)

    def at(q):
        pos = q * (len(ordered) - 1)
        low, high = math.floor(pos), math.ceil(pos)
        return 1000.0 * (ordered[low] + (ordered[high] - ordered[low]) * (pos - low))

    return at(0.50), at(0.95)


def time_calls(calls, repeats, warmup=3):
    """``{name: [seconds of each call]}`` for ``calls = {name: fn}``, taken in turns.

    Every function is called ``warmup`` times first (tracing, first allocations),
    then the functions take turns, one call each per pass, ``repeats[name]`` calls in
    all, so that a slow spell of the host is shared among them.
    """
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in calls}
    for i in range(max(repeats.values())):
        for name, fn in calls.items():
            if i < repeats[name]:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def subprocess_env(repo_root):
    """The environment of the measured subprocesses: this one, with the checkout importable
    and TensorFlow's C++ start-up log silenced (it is printed, not timed, but it is noise)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo_root), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    return env


def run_checked(cmd, env, timeout=600):
    """Runs ``cmd``; returns ``(wall seconds, stdout)``; a failure raises with the end of its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def peak_rss_mib(cmd, env):
    """``(peak resident memory in MiB, wall seconds)`` of one run of ``cmd``.

    ``os.wait4`` returns the ``getrusage`` record of that child alone;
    ``resource.getrusage(RUSAGE_CHILDREN)`` would report the largest of all the
    children this process has waited for (a TensorFlow start-up measured before).
    """
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{tail}")
    kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024  # bytes on macOS
    return kib / 1024.0, wall
