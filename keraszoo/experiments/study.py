"""What a study is: a declarative grid of training runs, and the budgets it runs at.

A :class:`Study` names the models it trains, the arguments every run shares
(``fixed``), a grid over any constructor or training argument (``grid``), what
each budget changes (``budgets``: epochs, training images, evaluation images,
optionally a smaller grid) and which probes are measured on the test split.
It is plain data: ``Study.from_dict(json.load(f))`` reads a user's spec file,
``study.to_dict()`` writes one back, and :func:`expand_grid` turns a grid into
the argument sets of its runs.

A spec file::

    {
      "name": "my_latent",
      "description": "AE vs VAE at three code sizes",
      "variants": ["ae", "vae"],
      "fixed": {"hidden_dims": [256]},
      "grid": {"latent_dim": [2, 8, 32], "reconstruction_loss": ["bce", "mse"]},
      "budgets": {"smoke": {"grid": {"latent_dim": [2]}}, "default": {"epochs": 3}},
      "probes": ["active_units"]
    }

``grid`` is a mapping ``{argument: [values]}`` (every combination is a run) or
a list of such mappings (the union of their combinations, as scikit-learn's
``ParameterGrid``). A grid entry may list ``"model"`` itself (variant keys or
presets); entries without it run every model of ``variants``.

A spec is checked whole before its first run: its fields here, every value of
its grids and ``fixed`` when it is planned
(:func:`keraszoo.experiments.planning.check_values`), its probes' options by
the probes' declarations; a bad value is refused naming its field
(``grid.latent_dim[0]: expected a positive integer <= 1048576, got '8' (a string).``).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import pathlib
import re

from keraszoo.training.recipe import UsageError

__all__ = ["BUDGETS", "Budget", "Study", "StudyError", "describe_value", "expand_grid"]

#: Arguments a study may not set: they come from the command (``--dataset``) or the budget.
RESERVED_ARGS = ("dataset", "epochs", "limit", "eval_split", "eval", "val_split", "early_stopping")


#: What a study's name may be: it names files (the report's figures), so never a path.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")


class StudyError(UsageError):
    """A study spec, budget or sweep configuration that cannot run; the message names the field."""


def describe_value(value) -> str:
    """What ``value`` is, for a message: ``"a string"``, ``"a boolean"``, ``"not a number"``, ..."""
    import math

    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "not a number" if math.isnan(value) else "infinite" if math.isinf(value) else "a float"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def refuse_value(path, expected, value):
    """Raise :class:`StudyError` ``"<path>: expected <expected>, got <value> (<what it is>)."``."""
    raise StudyError(f"{path}: expected {expected}, got {value!r} ({describe_value(value)}).")


def _did_you_mean(name, known) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


# --------------------------------------------------------------------------- budgets
@dataclasses.dataclass(frozen=True)
class Budget:
    """How much a study's runs train and evaluate.

    Args:
        epochs: training epochs of every run; with ``patience`` the cap of early stopping.
        limit: training images (the first N of the train split; ``None``: all).
        eval_examples: test images the run is evaluated on (the first N of the test split; ``None``: all).
        knn_train_examples: train images whose codes fit the k-NN and linear probe (``None``: all).
        iwae_samples: importance samples of the IWAE bound (VAE family; ``None``: not computed).
        fid: compute the sample Fréchet distance of generative models (MNIST).
        batch_size: training batch size.
        grid: a grid that replaces the study's at this budget (``None``: the study's grid).
        val_examples: training images held out for validation (a fixed random subset of the
            ``limit`` images, the same for every run: :func:`keraszoo.training.fitting.hold_out`);
            ``None``: none.
        patience: early stopping on the validation ``total_loss``: a run stops once it has not
            improved for ``patience`` epochs and keeps its best epoch's weights; 0: off (needs
            ``val_examples``).
        seeds: every setting of the grid runs with seeds ``0 .. seeds - 1`` (a study's own ``seed``
            argument, fixed or in the grid, replaces them).
        val_fraction: the share of each run's training images held out for validation instead of
            ``val_examples`` (a fixed random subset, :func:`keraszoo.training.fitting.hold_out`): for runs
            whose training images are a part of the split (one class of it: the anomaly studies), where a
            count fixed against the whole split would be most of the part. ``None``: ``val_examples``.
    """

    epochs: int
    limit: int | None
    eval_examples: int | None
    knn_train_examples: int | None
    iwae_samples: int | None = None
    fid: bool = False
    batch_size: int = 128
    grid: object = None
    val_examples: int | None = None
    patience: int = 0
    seeds: int = 1
    val_fraction: float | None = None

    def replace(self, **changes) -> Budget:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["grid"] is None:
            out.pop("grid")
        return out


#: The built-in budgets; a study overrides fields of them in ``Study.budgets``.
#: ``smoke`` is for tests (about 2 minutes per study on 2 CPU cores). ``default`` trains to
#: convergence: the whole train split less 5,000 validation images, early stopping on the
#: validation total loss (patience 5, the best epoch's weights kept) under a cap of 50
#: epochs, three seeds per setting, evaluated on the whole test split. ``full`` is the
#: default with a longer patience and cap, 1,000 importance samples and five seeds (for a GPU).
BUDGETS = {
    "smoke": Budget(epochs=1, limit=256, eval_examples=100, knn_train_examples=256),
    "default": Budget(epochs=50, limit=None, eval_examples=None, knn_train_examples=None, iwae_samples=100,
                      fid=True, val_examples=5000, patience=5, seeds=3),
    "full": Budget(epochs=200, limit=None, eval_examples=None, knn_train_examples=None, iwae_samples=1000,
                   fid=True, val_examples=5000, patience=10, seeds=5),
}

#: The most seeds a budget may ask for per setting (a larger number is a mistyped value).
MAX_SEEDS = 100

_BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(Budget))


def check_budget_name(name) -> str:
    if name not in BUDGETS:
        raise StudyError(f"--budget must be one of {', '.join(BUDGETS)}; got {name!r}.{_did_you_mean(name, BUDGETS)}")
    return name


def _check_budget_value(where, field, value):
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    positive = ("epochs", "batch_size", "seeds")
    optional_positive = ("limit", "eval_examples", "knn_train_examples", "iwae_samples", "val_examples")
    if field in positive and not (is_int(value) and value >= 1):
        raise StudyError(f"{where}.{field} must be a positive integer; got {value!r}.")
    if field in optional_positive and value is not None and not (is_int(value) and value >= 1):
        raise StudyError(f"{where}.{field} must be a positive integer or null; got {value!r}.")
    if field == "patience" and not (is_int(value) and value >= 0):
        raise StudyError(f"{where}.patience must be a non-negative integer (0: no early stopping); got {value!r}.")
    if field == "seeds" and is_int(value) and value > MAX_SEEDS:
        raise StudyError(f"{where}.seeds must be at most {MAX_SEEDS} (every setting runs once per seed); "
                         f"got {value!r}.")
    if field == "val_fraction" and value is not None and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
        raise StudyError(f"{where}.val_fraction must be a number in (0, 1) or null; got {value!r}.")
    if field == "fid" and not isinstance(value, bool):
        raise StudyError(f"{where}.fid must be true or false; got {value!r}.")
    if field == "grid" and value is not None:
        _check_grid(f"{where}.grid", value)


# --------------------------------------------------------------------------- grids
def _check_grid(where, grid):
    entries = [grid] if isinstance(grid, dict) else grid
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise StudyError(f"{where} must be an object {{argument: [values]}} or a non-empty list of them; got {grid!r}.")
    for i, entry in enumerate(entries):
        label = where if isinstance(grid, dict) else f"{where}[{i}]"
        for arg, values in entry.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise StudyError(f"{label}.{arg} must be a non-empty list of values; got {values!r}.")
            if arg in RESERVED_ARGS:
                raise StudyError(f"{label}.{arg}: {arg!r} is set by the command or the budget, not by a study.")


def expand_grid(grid) -> list:
    """The argument sets of a grid, in order: ``[{argument: value}, ...]``.

    ``{"a": [1, 2], "b": [3]}`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``; a list
    of grids is the concatenation of their expansions (an empty ``{}`` is one run
    with no varied argument).
    """
    entries = [grid] if isinstance(grid, dict) else list(grid)
    points = []
    for entry in entries:
        keys = list(entry)
        for values in itertools.product(*(entry[k] for k in keys)):
            points.append(dict(zip(keys, values)))
    return points


# --------------------------------------------------------------------------- the study
@dataclasses.dataclass
class Study:
    """A declarative sweep: which models, which arguments, at which budgets, measured how.

    Args:
        name: the study's name (also the results' ``study`` field): letters, digits, ``_``, ``.``
            and ``-`` (it names files; never a path).
        description: what the study asks, in a sentence or two.
        variants: models (variant keys or presets, ``"*"``: every registered
            variant) for grid entries that do not list ``"model"``.
        fixed: arguments shared by every run (constructor arguments, training
            options, :class:`~keraszoo.training.recipe.Recipe` fields).
        grid: ``{argument: [values]}`` or a list of them (see :func:`expand_grid`).
        budgets: ``{budget: {field: value}}`` overriding :data:`BUDGETS`' fields.
        probes: probe names (``["active_units"]``) or ``{name: {option: value}}``;
            see :mod:`keraszoo.experiments.probes`.
        datasets: the datasets the study is meant for (``--dataset`` must be one).
        baselines: the reference runs the report sets the others beside, in order:
            ``[{"params": {argument: value}, "label": "the plain autoencoder's"}]``.
            A baseline is the first run whose params hold ``params``; it is
            compared with every other run that sets all of ``params``' arguments
            (``label`` names it in the report's sentences).
        classical: classical references computed in the same sweep at every ``latent_dim``
            of the grid (``["pca", "linear_ae"]``; see :mod:`keraszoo.experiments.classical`).
    """

    name: str
    description: str = ""
    variants: tuple = ()
    fixed: dict = dataclasses.field(default_factory=dict)
    grid: object = dataclasses.field(default_factory=dict)
    budgets: dict = dataclasses.field(default_factory=dict)
    probes: object = ()
    datasets: tuple = ("mnist", "fashion_mnist", "cifar10")
    baselines: list = dataclasses.field(default_factory=list)
    classical: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.variants = tuple(self.variants)
        self.datasets = tuple(self.datasets)
        self.check()

    # ------------------------------------------------------------ checks
    def check(self):
        """Refuse a malformed study, naming the field (the values are checked against the models when planned)."""
        where = f"Study {self.name!r}" if isinstance(self.name, str) else "Study"
        if not isinstance(self.name, str) or not self.name.strip():
            raise StudyError(f"Study.name must be a non-empty string; got {self.name!r}.")
        if not NAME_PATTERN.fullmatch(self.name) or ".." in self.name:
            raise StudyError(f"Study.name must be a name (letters, digits, '_', '.', '-'; no '..'), not a path: "
                             f"it names the results and the report's files; got {self.name!r}.")
        if not isinstance(self.description, str):
            raise StudyError(f"{where}: description must be a string; got {self.description!r}.")
        if not all(isinstance(v, str) and v for v in self.variants):
            raise StudyError(f"{where}: variants must be a list of model names (variant keys or presets, '*': all); "
                             f"got {list(self.variants)!r}.")
        if not isinstance(self.fixed, dict):
            raise StudyError(f"{where}: fixed must be an object {{argument: value}}; got {self.fixed!r}.")
        if "model" in self.fixed:
            raise StudyError(f"{where}: fixed.model: name the models in variants (or a grid entry's 'model' list).")
        for arg in self.fixed:
            if arg in RESERVED_ARGS:
                raise StudyError(f"{where}: fixed.{arg}: {arg!r} is set by the command or the budget, not by a study.")
        _check_grid(f"{where}: grid", self.grid)
        if not self.variants and not all("model" in e for e in expand_grid_entries(self.grid)):
            raise StudyError(f"{where}: give variants (a list of model names) or a 'model' list in every grid entry.")
        if not isinstance(self.budgets, dict):
            raise StudyError(f"{where}: budgets must be an object {{budget: {{field: value}}}}; got {self.budgets!r}.")
        for budget, fields in self.budgets.items():
            if budget not in BUDGETS:
                raise StudyError(f"{where}: budgets.{budget}: unknown budget; expected one of "
                                 f"{', '.join(BUDGETS)}.{_did_you_mean(budget, BUDGETS)}")
            if not isinstance(fields, dict):
                raise StudyError(f"{where}: budgets.{budget} must be an object {{field: value}}; got {fields!r}.")
            for field, value in fields.items():
                if field not in _BUDGET_FIELDS:
                    raise StudyError(f"{where}: budgets.{budget}.{field}: unknown budget field; expected one of "
                                     f"{', '.join(_BUDGET_FIELDS)}.{_did_you_mean(field, _BUDGET_FIELDS)}")
                _check_budget_value(f"{where}: budgets.{budget}", field, value)
        from keraszoo.experiments.probes import check_probes

        try:
            self.probes = check_probes(self.probes)
        except ValueError as err:
            raise StudyError(f"{where}: probes: {err}") from None
        from keraszoo.data import list_datasets

        known = list_datasets()
        bad = [d for d in self.datasets if d not in known]
        if bad or not self.datasets:
            raise StudyError(f"{where}: datasets must list some of {', '.join(known)}; got {list(self.datasets)!r}.")
        _check_baselines(where, self.baselines)
        from keraszoo.experiments.classical import check_classical

        self.classical = check_classical(where, self.classical)
        from keraszoo.experiments.classical import CLASSICAL

        for name in self.classical:
            for arg in CLASSICAL[name].over:
                if not any(arg in e for e in expand_grid_entries(self.grid)) and arg not in self.fixed:
                    what = "code sizes" if arg == "latent_dim" else f"values of {arg}"
                    raise StudyError(f"{where}: classical references are fit at the study's {what}: give {arg} "
                                     "in fixed or in the grid.")

    def budget(self, name: str) -> Budget:
        """The :class:`Budget` ``name`` with this study's overrides."""
        check_budget_name(name)
        return BUDGETS[name].replace(**self.budgets.get(name, {}))

    def grid_at(self, budget: str):
        """The grid run at ``budget`` (a budget's own, reduced grid, else the study's)."""
        override = self.budget(budget).grid
        return self.grid if override is None else override

    # ------------------------------------------------------------ the JSON form
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "variants": list(self.variants),
            "fixed": dict(self.fixed),
            "grid": self.grid,
            "budgets": self.budgets,
            "probes": self.probes,
            "datasets": list(self.datasets),
            "baselines": [dict(b) for b in self.baselines],
            "classical": list(self.classical),
        }

    @classmethod
    def from_dict(cls, spec, where="study spec") -> Study:
        """A study from its JSON form; unknown or mistyped fields are refused by name."""
        if not isinstance(spec, dict):
            raise StudyError(f"{where} must be a JSON object with the fields of a study; got {type(spec).__name__}.")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in spec if k not in fields]
        if unknown:
            raise StudyError(f"{where}: unknown field {unknown[0]!r}.{_did_you_mean(unknown[0], fields)} "
                             f"A study has the fields {', '.join(fields)}.")
        if "name" not in spec:
            raise StudyError(f"{where}: the field 'name' is missing (the study's name).")
        spec = dict(spec)
        for field in ("variants", "datasets"):
            if field in spec and not isinstance(spec[field], list):
                raise StudyError(f"{where}: {field} must be a list of names; got {spec[field]!r}.")
        try:
            return cls(**spec)
        except StudyError as err:
            raise StudyError(f"{where}: {err}") from None

    @classmethod
    def from_json(cls, path) -> Study:
        """A study from a spec file (see the module docstring)."""
        path = pathlib.Path(path).expanduser()
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise StudyError(f"No study spec file {path}.") from None
        except (OSError, UnicodeDecodeError) as err:
            raise StudyError(f"Cannot read the study spec {path}: {err}") from None
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as err:
            raise StudyError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.") from None
        return cls.from_dict(spec, where=str(path))


def _check_baselines(where, baselines):
    if not isinstance(baselines, list):
        raise StudyError(f"{where}: baselines must be a list of {{\"params\": {{argument: value}}, \"label\": text}}; "
                         f"got {baselines!r}.")
    for i, baseline in enumerate(baselines):
        at = f"{where}: baselines[{i}]"
        if not isinstance(baseline, dict) or set(baseline) != {"params", "label"}:
            raise StudyError(f"{at} must be an object with exactly the fields params and label; got {baseline!r}.")
        if not isinstance(baseline["params"], dict) or not baseline["params"]:
            raise StudyError(f"{at}.params must be a non-empty object {{argument: value}}; got {baseline['params']!r}.")
        if not isinstance(baseline["label"], str) or not baseline["label"].strip():
            raise StudyError(f"{at}.label must be a non-empty string; got {baseline['label']!r}.")


def expand_grid_entries(grid) -> list:
    """The grid's entries as a list of mappings."""
    return [grid] if isinstance(grid, dict) else list(grid)
