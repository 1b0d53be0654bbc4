"""What the report reads: the saved models and test images of a results folder, each loaded at most once, and
:class:`StudyRuns`, one study's runs as the tables, figures and discussion see them.

:class:`SavedRuns` is the report's only reader of the runs' files: ``keraszoo.load`` once per run folder, and
``keraszoo.data.load_arrays`` once per evaluated split (dataset, split, binarization, source), however many runs,
figures and checks ask. A load that fails is not retried: the same error is raised again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

#: ``params`` keys that never count as a swept setting (where files live, how often to back up).
NOT_SETTINGS = ("data_dir", "out", "backup_every", "eval_split", "hparam", "verbose")


def fmt(value):
    """A table cell: 4 significant digits, ``–`` for a missing or non-finite number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def group_by(items, key):
    """``{key(item): [items]}`` in first-seen order."""
    out = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out


# ----------------------------------------------------------------- the runs' files, each read once
class SavedRuns:
    """The saved models and evaluated test images of the runs of ``results_dir`` (``data_dir``: the archives)."""

    def __init__(self, results_dir, data_dir=None):
        self.results_dir = pathlib.Path(results_dir)
        self.data_dir = data_dir
        self._models = {}  # model_dir -> model, or the error loading it raised
        self._splits = {}  # (dataset, split, binarize, source) -> (x, y), or the error

    def model(self, record):
        """The run's saved model (``keraszoo.load`` of ``record["model_dir"]``, once)."""
        folder = record["model_dir"]
        if folder not in self._models:
            import keraszoo

            try:
                self._models[folder] = keraszoo.load(str(self.results_dir / folder))
            except Exception as err:  # noqa: BLE001 - raised again to every caller, which reports it
                self._models[folder] = err
        return _value(self._models[folder])

    def test_images(self, record):
        """``(x, y)``: the first ``eval.num_examples`` images of the run's evaluation split, as it evaluated them."""
        from keraszoo import data

        ev = record["eval"]
        source = (record.get("params") or {}).get("data_source") or "auto"
        key = (record["dataset"], ev["split"], data.evaluation_binarize(ev.get("binarize")), source)
        if key not in self._splits:
            try:
                self._splits[key] = data.load_arrays(key[0], key[1], source=source, data_dir=self.data_dir,
                                                     binarize=key[2])
            except Exception as err:  # noqa: BLE001 - raised again to every caller, which reports it
                self._splits[key] = err
        x, y = _value(self._splits[key])
        n = int(ev["num_examples"])
        if len(x) < n:
            raise ValueError(f"run {record['run_id']}: evaluated on {n} images of {record['dataset']} {ev['split']}; "
                             f"only {len(x)} are available here.")
        return x[:n], y[:n]


def _value(found):
    if isinstance(found, Exception):
        raise found
    return found


# ----------------------------------------------------------------- one study
@dataclasses.dataclass
class StudyRuns:
    """The runs of one study and what the tables, figures and discussion need of them.

    ``saved``: where the models and test images come from (none: the figures that need them are left out);
    ``spec``: the study's :class:`~keraszoo.experiments.study.Study` (its ``baselines``), when known.
    """

    name: str
    runs: list
    saved: SavedRuns | None = None
    spec: object = None
    #: the study's swept settings, kept by a subset of its runs (one group of a plot)
    swept_keys: list | None = None

    @property
    def swept(self):
        """The settings whose values differ between the runs: numeric ones first (the x axis), then the others."""
        if self.swept_keys is not None:
            return self.swept_keys
        keys = sorted({k for r in self.runs for k in r["params"]} - set(NOT_SETTINGS))
        differing = [k for k in keys if len({json.dumps(r["params"].get(k), sort_keys=True) for r in self.runs}) > 1]
        numeric = [k for k in differing if all(isinstance(r["params"].get(k), (int, float)) and not isinstance(
            r["params"].get(k), bool) for r in self.runs)]
        return numeric + [k for k in differing if k not in numeric]

    @property
    def terms(self):
        """L_total, the reconstruction term, then every other logged ``*_loss`` term (train history)."""
        names = []
        for r in self.runs:
            for k in r.get("history", {}):
                if k.endswith("_loss") and not k.startswith("val_") and k not in names:
                    names.append(k)
        head = [k for k in ("total_loss", "reconstruction_loss") if k in names]
        return head + sorted(k for k in names if k not in head)

    @property
    def baselines(self):
        """The study's reference runs, ``[{"params", "label"}]`` (its spec's; none when the spec is unknown)."""
        return [] if self.spec is None else list(self.spec.baselines)

    def groups(self):
        """Runs by the non-numeric swept settings (variant, reconstruction loss ...): one line per group in plots."""
        swept = self.swept
        numeric = swept[:1] if swept and all(isinstance(r["params"].get(swept[0]), (int, float)) for r in self.runs) else []
        keys = [k for k in swept if k not in numeric]
        if not numeric:  # a categorical sweep: one line over its values
            return {"": self.runs}
        out = {}
        for r in self.runs:
            out.setdefault(" ".join(f"{r['params'].get(k)}" for k in keys), []).append(r)
        return {g: sorted(rs, key=lambda r: r["params"].get(numeric[0])) for g, rs in out.items()}

    def subset(self, runs):
        return StudyRuns(self.name, runs, self.saved, self.spec, self.swept)

    def label(self, r):
        return ", ".join(f"{k}={fmt(r['params'].get(k))}" for k in self.swept) or r["run_id"]

    def train_value(self, r, term):
        values = r.get("history", {}).get(term) or []
        return float(values[-1]) if values else float("nan")

    def test_value(self, r, term):
        value = r.get("test", {}).get(term)
        return float(value) if isinstance(value, (int, float)) else float("nan")

    def model(self, r):
        """The run's saved model, loaded once for the whole report."""
        if self.saved is None:
            raise LookupError(f"study {self.name!r}: no saved runs to load run {r['run_id']!r} from.")
        return self.saved.model(r)

    def likelihood(self, r):
        """What the run's reconstruction_loss measures: comparable only between runs that measure the same."""
        try:
            return self.model(r).reconstruction_description()
        except Exception:  # noqa: BLE001 - a model that does not load is reported by the consistency check
            return "unknown"

    def images(self, count):
        """The first ``count`` test images and labels of the study's first run (``(None, None)`` if unavailable)."""
        if self.saved is None:
            return None, None
        try:
            x, y = self.saved.test_images(self.runs[0])
        except Exception:  # noqa: BLE001 - the image figures are then left out, and the report says so
            return None, None
        return x[:count], y[:count]
