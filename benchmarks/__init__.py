"""Benchmarks of keraszoo against references measured in the same run (see BENCHMARKS.md).

``python benchmarks/run.py [--quick] [--only NAME,...] [--out DIR]`` is the one entry point;
:mod:`benchmarks.figures` holds the measuring (interleaved epochs, latencies, subprocess
timings), :mod:`benchmarks.references` the hand-written reference models,
:mod:`benchmarks.report` the printed table and :mod:`benchmarks.mirrored` the
two-logical-CPU case that needs a fresh process.
"""
