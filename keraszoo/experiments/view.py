"""What the report reads: the saved models and test images of a results folder, each loaded at most once, and
:class:`StudyRuns`, one study's runs as the tables, figures and discussion see them: grouped into *settings*
(:class:`Setting`: a run's ``params`` without its ``seed``; its runs differ only in the seed) and into *panels*,
one per likelihood (what ``reconstruction_loss`` measures, with its unit: runs of different ones never share a
table column or an axis).

:class:`SavedRuns` is the report's only reader of the runs' files: ``keraszoo.load`` once per run folder, and
``keraszoo.data.load_arrays`` once per evaluated split (dataset, split, binarization, source), however many runs,
figures and checks ask. A load that fails is not retried: the same error is raised again. A report rebuilt from
``results.jsonl`` alone (no run folder here: ``results_only``) loads nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

from keraszoo.experiments import stats

#: ``params`` keys that never count as a swept setting (where files live, how often to back up).
NOT_SETTINGS = ("data_dir", "out", "backup_every", "eval_split", "hparam", "verbose", "seed")


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

    def __init__(self, results_dir, data_dir=None, results_only=False):
        self.results_dir = pathlib.Path(results_dir)
        self.data_dir = data_dir
        #: no run folder is here (the report is rebuilt from results.jsonl alone): nothing is loaded
        self.results_only = results_only
        self._models = {}  # model_dir -> model, or the error loading it raised
        self._splits = {}  # (dataset, split, binarize, source) -> (x, y), or the error
        self._blank = {}  # the configuration of a run, as JSON -> a model built from it untrained, or the error
        try:
            from keraszoo.experiments.results import read_carried

            #: ``{run_id: how it came}``: runs finished on another machine, their folders left there (``carried.json``)
            self.carried = read_carried(self.results_dir)
        except ValueError:
            self.carried = {}

    def has_folder(self, record) -> bool:
        """Whether the run's saved folder is here (a classical run has none)."""
        return bool(record.get("model_dir")) and (self.results_dir / str(record["model_dir"])).is_dir()

    def carried_without_folder(self, record) -> bool:
        """Whether the run was carried here as its results line alone (:mod:`keraszoo.experiments.carry`)."""
        return str(record.get("run_id")) in self.carried and not self.has_folder(record)

    def blank_model(self, record):
        """A model built untrained from the run's ``params`` (once per configuration, whatever the seed): what an
        old results line does not record (its loss weights, its likelihood) read from the constructor."""
        from keraszoo.data import dataset_info
        from keraszoo.experiments.planning import _split_params
        from keraszoo.models import create_model

        params = {k: v for k, v in (record.get("params") or {}).items() if k != "seed"}
        key = json.dumps([record.get("dataset"), params], sort_keys=True, default=str)
        if key not in self._blank:
            try:
                _, kwargs, _ = _split_params(params)
                kwargs.pop("model", None)
                self._blank[key] = create_model(str(params["model"]),
                                                input_shape=dataset_info(record["dataset"]).image_shape, **kwargs)
            except Exception as err:  # noqa: BLE001 - raised again to every caller, which falls back
                self._blank[key] = err
        return _value(self._blank[key])

    def model(self, record):
        """The run's saved model (``keraszoo.load`` of ``record["model_dir"]``, once)."""
        folder = record["model_dir"]
        if folder is None:
            raise LookupError(f"run {record['run_id']} is a classical reference: it saved no model.")
        if self.results_only:
            raise LookupError(f"run {record['run_id']}: the run folders are not here (results.jsonl alone).")
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


# ----------------------------------------------------------------- settings and their labels
def variant_class(variant):
    """The model class registered as ``variant`` (a results line's ``variant``); ``None`` for a variant this keraszoo
    does not know (a line written by another version or a user's registry)."""
    from keraszoo.models.registry import get_variant

    try:
        return get_variant(variant)
    except ValueError:
        return None


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def describe_loss(name) -> str:
    """What a ``reconstruction_loss`` argument measures, in the models' own words (``"mse"``: the squared error)."""
    import types

    from keraszoo.models.capabilities import Capabilities

    return str(Capabilities.reconstruction_description(types.SimpleNamespace(reconstruction_loss=name)))


def classical_title(record) -> str | None:
    """``"PCA"``, ``"linear autoencoder"`` for a classical reference's line; ``None`` for a model's."""
    if record.get("kind") != "classical":
        return None
    from keraszoo.experiments.classical import CLASSICAL

    found = CLASSICAL.get(str(record.get("variant")))
    return found.title if found is not None else str(record.get("variant"))


def part(key, value) -> str:
    """One setting's value as a reader names it: ``vae``, ``mse``, ``hidden_dims 512-256``, ``latent_dim=8``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return f"{key} {'-'.join(fmt(v) for v in value) or 'none'}"
    return f"{key}={fmt(value)}"


def _order(key, value):
    """Labels read: names first (model, likelihood, noise type), then layer lists, then numbers."""
    return (0 if key == "model" else 1 if isinstance(value, str) else 2 if isinstance(value, (list, tuple)) else 3)


def label_of(params, keys, title=None) -> str:
    """The label of a setting from its values of ``keys`` (unset ones left out; ``title``: a classical reference's
    name instead of its ``model``)."""
    items = [(k, params.get(k)) for k in keys if params.get(k) is not None]
    items.sort(key=lambda kv: _order(*kv))
    parts = [title if (k == "model" and title) else part(k, v) for k, v in items]
    if title and "model" not in keys:
        parts.insert(0, title)
    return ", ".join(parts)


@dataclasses.dataclass
class Setting:
    """The runs of one setting (``params`` without ``seed``), in seed order.

    ``exact``: a deterministic reference (PCA), whose one run holds for every seed; ``likelihood``: what its
    ``reconstruction_loss`` measures.
    """

    key: str
    params: dict
    runs: list
    label: str
    likelihood: str
    exact: bool = False
    title: str | None = None  # a classical reference's name

    def values(self, value_of) -> dict:
        """``{seed: value_of(run)}`` of the runs with a finite value."""
        out = {}
        for r in self.runs:
            v = value_of(r)
            if is_number(v) and math.isfinite(float(v)):
                out[seed_of(r)] = float(v)
        return out

    def interval(self, value_of) -> stats.Interval:
        return stats.interval(list(self.values(value_of).values()), exact=self.exact)

    @property
    def n(self):
        return len(self.runs)


def seed_of(record):
    """The run's seed (its line's ``seed``, else its params', else 0)."""
    seed = record.get("seed")
    if seed is None:
        seed = (record.get("params") or {}).get("seed", 0)
    return seed


def setting_key(record) -> str:
    params = {k: v for k, v in (record.get("params") or {}).items() if k != "seed"}
    return json.dumps([record.get("kind", "model"), record.get("variant"), params], sort_keys=True, default=str)


# ----------------------------------------------------------------- settings along an axis
def _differs(params, key, unset_counts=True) -> bool:
    """Whether ``key`` takes more than one value over the dicts ``params`` (``unset_counts=False``: among those that
    set it)."""
    found = [p.get(key) for p in params]
    return len({json.dumps(v, sort_keys=True, default=str) for v in found if unset_counts or v is not None}) > 1


def _varying(settings, keys, unset_counts=True):
    """The ``keys`` whose values differ between ``settings`` (``unset_counts=False``: among the settings that set
    them: a classical reference without ``reconstruction_loss`` does not make it vary)."""
    return [k for k in keys if _differs([s.params for s in settings], k, unset_counts)]


def x_key(ctx, settings):
    """The numeric swept argument the settings are drawn along (``None``: they are categories)."""
    for key in ctx.swept:
        present = [s.params.get(key) for s in settings if s.params.get(key) is not None]
        if present and all(is_number(v) for v in present) and len({float(v) for v in present}) >= 2:
            return key
    return None


def lines_of(ctx, settings, key, within=None):
    """``(lines, references)`` of ``settings`` along ``key``: ``[(label, settings by key)]`` for the settings that
    set it (one line per value of the other varying arguments), ``[(label, setting)]`` for those that do not.
    ``within``: the settings the labels tell apart (default ``settings``; a panel of some of them labels its lines as
    the whole figure does)."""
    others = [k for k in _varying(settings if within is None else within, ctx.swept, unset_counts=False) if k != key]
    on_axis = [s for s in settings if s.params.get(key) is not None]
    lines = group_by(on_axis, lambda s: label_of(s.params, others, s.title) or "all settings")
    refs = [(label_of(s.params, others, s.title) or s.label, s) for s in settings if s.params.get(key) is None]
    return [(label, sorted(ss, key=lambda s: float(s.params[key]))) for label, ss in lines.items()], refs


def category_labels(ctx, settings):
    """Tick labels of settings drawn as categories: the arguments that vary between them, less those a setting's
    model sets alike in all its runs (as its label leaves them out: the VQ-VAE's ``prior_epochs``)."""
    keys = _varying(settings, ctx.swept) or ctx.swept
    labels = []
    for s in settings:
        own = ctx.label_keys(s.runs[0]) if s.runs and hasattr(ctx, "label_keys") else keys
        labels.append(label_of(s.params, [k for k in keys if k in own], s.title) or s.label)
    return labels


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
    #: the study's swept settings, kept by a subset of its runs (one panel of a plot)
    swept_keys: list | None = None
    _likelihoods: dict = dataclasses.field(default_factory=dict, repr=False)
    _label_keys: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def swept(self):
        """The settings whose values differ between the runs (never the seed): numeric ones first, then the others."""
        if self.swept_keys is not None:
            return self.swept_keys
        keys = sorted({k for r in self.runs for k in r["params"]} - set(NOT_SETTINGS))
        # The classical references set only their code size: an argument the models all set alike is not swept.
        models = [r for r in self.runs if r.get("kind") != "classical"] or self.runs
        classical = [r for r in self.runs if r.get("kind") == "classical"]
        model_params, classical_params = [r["params"] for r in models], [r["params"] for r in classical]
        differing = [k for k in keys if _differs(model_params, k) or _differs(classical_params, k, unset_counts=False)
                     or (k == "model" and _differs([r["params"] for r in self.runs], k))]
        numeric = [k for k in differing if all(is_number(r["params"].get(k)) for r in self.runs)]
        return numeric + [k for k in differing if k not in numeric]

    @property
    def terms(self):
        """L_total, the reconstruction term, then every other logged ``*_loss`` term (train history)."""
        names = []
        for r in self.runs:
            for k in r.get("history", {}):
                if k.endswith("_loss") and not k.startswith("val_") and k not in names:
                    names.append(k)
            for k in ("total_loss", "reconstruction_loss"):
                if k in r.get("test", {}) and k not in names:
                    names.append(k)
        head = [k for k in ("total_loss", "reconstruction_loss") if k in names]
        return head + sorted(k for k in names if k not in head)

    @property
    def one_class(self) -> bool:
        """A one-class study (its runs train on the ``classes`` they name and are scored on the whole test split,
        anomalies included): its settings differ in the normal class, so ranking them by a loss says nothing."""
        return any(r.get("params", {}).get("classes") is not None for r in self.runs)

    @property
    def baselines(self):
        """The study's reference runs, ``[{"params", "label"}]`` (its spec's; none when the spec is unknown)."""
        return [] if self.spec is None else list(self.spec.baselines)

    def subset(self, runs):
        """The study's ``runs`` (one panel of a plot), named as in the study: they keep its swept and label keys."""
        return StudyRuns(self.name, runs, self.saved, self.spec, self.swept, self._likelihoods, self._keys_by_model())

    def is_exact(self, r) -> bool:
        """A deterministic classical reference (PCA): its one run stands for every seed."""
        if r.get("kind") != "classical":
            return False
        from keraszoo.experiments.classical import CLASSICAL

        found = CLASSICAL.get(str(r.get("variant")))
        return bool(found is not None and found.deterministic)

    def settings(self, runs=None) -> list:
        """The settings of ``runs`` (default: the study's) in first-seen order, each with its runs by seed."""
        out = {}
        for r in self.runs if runs is None else runs:
            out.setdefault(setting_key(r), []).append(r)
        settings = []
        for key, group in out.items():
            group = sorted(group, key=lambda r: str(seed_of(r)))
            first = group[0]
            params = {k: v for k, v in first["params"].items() if k != "seed"}
            title = classical_title(first)
            label = self.label(first)
            settings.append(Setting(key, params, group, label, self.likelihood(first), self.is_exact(first), title))
        return settings

    def panels(self, settings=None) -> dict:
        """``{likelihood: [settings]}``: the settings whose reconstruction terms share a unit, first-seen order."""
        return group_by(self.settings() if settings is None else settings, lambda s: s.likelihood)

    def _keys_by_model(self) -> dict:
        """``{model: label keys}``: ``model`` and the swept arguments that differ between that model's runs (computed
        once for the study; a subset is given its study's)."""
        if not self._label_keys:
            with_model = [r for r in self.runs if r["params"].get("model") is not None]
            for model, family in group_by(with_model, lambda r: r["params"]["model"]).items():
                params = [r["params"] for r in family]
                self._label_keys[model] = [k for k in self.swept if k == "model" or _differs(params, k)]
        return self._label_keys

    def label_keys(self, r) -> list:
        """The swept arguments that name run ``r``'s setting: ``model`` and those that differ between the runs of its
        own model (a VQ-VAE's codebook size, fixed for every VQ-VAE of the study, is in :meth:`fixed_by_model`)."""
        return self._keys_by_model().get(r["params"].get("model"), self.swept)

    def fixed_by_model(self) -> dict:
        """``{model: label}``: the swept arguments a model sets alike in every run of the study, which its settings'
        labels leave out (only models that have some)."""
        out = {}
        for r in self.runs:
            model = r["params"].get("model")
            if model is None or model in out:
                continue
            keys = [k for k in self.swept if k != "model" and k not in self.label_keys(r)]
            out[model] = label_of(r["params"], keys)
        return {m: text for m, text in out.items() if text}

    def label(self, r):
        title = classical_title(r)
        keys = self.label_keys(r)
        return label_of(r["params"], keys, title) or label_of(r["params"], ["model"], title) or r["run_id"]

    def train_value(self, r, term):
        """The training ``term`` of the kept epoch (``best_epoch``, else the last): the weights the test measured."""
        values = r.get("history", {}).get(term) or []
        best = r.get("best_epoch")
        if is_number(best) and 1 <= int(best) <= len(values):
            value = values[int(best) - 1]
        else:
            value = values[-1] if values else None
        return float(value) if is_number(value) else float("nan")

    def val_value(self, r, term):
        """The validation ``term`` (``val_<term>``) of the kept epoch."""
        return self.train_value(r, f"val_{term}")

    def test_value(self, r, term):
        value = r.get("test", {}).get(term)
        return float(value) if is_number(value) else float("nan")

    def run_value(self, r, field):
        """A top-level number of the line (``seconds_per_epoch``, ``num_params``, ``epochs_run``)."""
        value = r.get(field)
        return float(value) if is_number(value) else float("nan")

    def model(self, r):
        """The run's saved model, loaded once for the whole report."""
        if self.saved is None:
            raise LookupError(f"study {self.name!r}: no saved runs to load run {r['run_id']!r} from.")
        return self.saved.model(r)

    def likelihood(self, r):
        """What the run's reconstruction_loss measures, with its unit: comparable only between runs that measure the
        same. The line's ``likelihood``; for an older line, the saved model's (when it loads), else the model its
        params build, else its ``reconstruction_loss`` argument's; a classical reference's is the squared error."""
        key = str(r.get("run_id"))
        if key not in self._likelihoods:
            self._likelihoods[key] = self._find_likelihood(r)
        return self._likelihoods[key]

    def term_definition(self, r, term) -> tuple:
        """What ``term`` measures in run ``r`` where its variant's arguments choose it (the sparse autoencoder's
        ``sparsity_loss``, a KL or an L1 penalty, and the ``total_loss`` that adds it): the variant's
        :meth:`~keraszoo.models.capabilities.Capabilities.term_definition`; ``()`` for every other term, for a
        classical reference and for a variant this keraszoo does not know."""
        from keraszoo.models.registry import resolve_preset

        params = r.get("params") or {}
        if r.get("kind") == "classical" or params.get("model") is None:
            return ()
        try:  # a variant key or a preset (whose arguments count as the run's, under the run's own)
            variant, preset = resolve_preset(str(params["model"]))
        except ValueError:
            return ()
        return variant.term_definition(term, {**preset, **params})

    def definition_groups(self, settings, term) -> dict:
        """``{definition: [settings]}`` (first-seen order): ``settings`` split where ``term`` is not one quantity, that
        is where their variants' arguments choose two or more definitions of it; otherwise ``{(): settings}`` (a
        term only one variant of the study logs, in one definition, is one quantity)."""
        groups = group_by(settings, lambda s: self.term_definition(s.runs[0], term))
        if sum(1 for definition in groups if definition) < 2:
            return {(): list(settings)}
        return groups

    def _find_likelihood(self, r):
        if isinstance(r.get("likelihood"), str) and r["likelihood"]:
            return r["likelihood"]
        if r.get("kind") == "classical":
            return describe_loss("mse")
        if self.saved is not None:
            for get in (self.saved.model, self.saved.blank_model):
                try:
                    return str(get(r).reconstruction_description())
                except Exception:  # noqa: BLE001 - the next source
                    continue
        loss = (r.get("params") or {}).get("reconstruction_loss")
        return describe_loss(loss) if isinstance(loss, str) else "reconstruction loss (unit not recorded)"

    def images(self, count):
        """The first ``count`` test images and labels of the study's first run (``(None, None)`` if unavailable)."""
        if self.saved is None or self.saved.results_only:
            return None, None
        for r in self.runs:
            if r.get("model_dir") is None:
                continue
            try:
                x, y = self.saved.test_images(r)
            except Exception:  # noqa: BLE001 - the image figures are then left out, and the report says so
                return None, None
            return x[:count], y[:count]
        return None, None
