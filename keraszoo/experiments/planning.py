"""Planning a sweep: a study, a dataset and a budget become picklable run specs (:class:`RunSpec`) with stable ids."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from keraszoo.experiments.results import RUNS_DIR
from keraszoo.experiments.studies import get_study
from keraszoo.experiments.study import RESERVED_ARGS
from keraszoo.experiments.study import StudyError
from keraszoo.experiments.study import _did_you_mean
from keraszoo.experiments.study import check_budget_name
from keraszoo.experiments.study import expand_grid
from keraszoo.experiments.study import expand_grid_entries


# --------------------------------------------------------------------------- planning
@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything :func:`execute_run` needs, picklable and JSON-ready."""

    run_id: str
    study: str
    dataset: str
    budget: str
    model: str
    variant: str
    #: every argument of the run the study sets (fixed and varied), with ``model``.
    params: dict
    #: arguments of :class:`~keraszoo.training.recipe.Recipe` beyond ``params`` (the budget's).
    recipe_fields: dict
    #: ``{num_examples, binarize, knn_train_examples, iwae_samples, fid}``.
    evaluation: dict
    probes: dict
    seed: int
    epochs: int
    #: ``"model"`` (a keraszoo variant, trained and saved) or ``"classical"`` (``variant`` names a
    #: :data:`~keraszoo.experiments.classical.CLASSICAL` reference; no folder).
    kind: str = "model"

    @property
    def model_dir(self) -> str:
        """The run's ``save_pretrained`` folder, relative to the sweep folder."""
        return f"{RUNS_DIR}/{self.run_id}"

    def recipe(self):
        """The run's :class:`~keraszoo.training.recipe.Recipe` (a model run's)."""
        from keraszoo.training.recipe import Recipe

        fields, kwargs, options = _split_params(self.params)
        return Recipe(model_kwargs=kwargs, options=options, dataset=self.dataset, **fields, **self.recipe_fields)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, spec: dict) -> RunSpec:
        return cls(**spec)


def _recipe_fields() -> set:
    from keraszoo.training.recipe import Recipe

    return {f.name for f in dataclasses.fields(Recipe)} - {"model_kwargs", "options", "hparam"}


def _split_params(params: dict):
    """``params`` -> ``(Recipe fields, model constructor kwargs, training options)``."""
    from keraszoo.training.recipe import option_flags

    fields, options = _recipe_fields(), option_flags()
    out = ({}, {}, {})
    for name, value in params.items():
        out[0 if name in fields else 2 if name in options else 1][name] = value
    return out


def _resolve_models(names) -> list:
    from keraszoo.models import list_presets
    from keraszoo.models import list_variants

    models = []
    for name in names:
        if name == "*":
            models.extend(sorted(list_variants()))
        elif name in list_presets():
            models.append(name)
        else:
            known = sorted(list_presets())
            raise StudyError(f"Unknown model {name!r} in the study.{_did_you_mean(name, known)} Models: variant keys "
                             f"or presets ({', '.join(known)}), or '*' for every variant.")
    return list(dict.fromkeys(models))


#: Constructor arguments a study cannot set (the dataset gives the shape; networks are not JSON).
_NOT_STUDY_ARGS = {"args", "kwargs", "input_shape", "encoder", "decoder"}


def _study_args(cls) -> set:
    """The constructor arguments (the Recipe's rule: :func:`~keraszoo.training.recipe.accepted_arguments`) and
    training options of variant ``cls`` that a study may set."""
    from keraszoo.training.recipe import accepted_arguments

    return (accepted_arguments(cls) - _NOT_STUDY_ARGS) | set(cls.all_training_options())


def _accepts(cls, arg) -> bool:
    """Whether variant ``cls`` takes ``arg`` (a constructor argument or a training option)."""
    return arg in _study_args(cls)


def _known_args(models) -> set:
    """Every constructor argument and training option of ``models`` (for did-you-mean hints)."""
    from keraszoo.models import resolve_preset

    return set().union(*(_study_args(resolve_preset(m)[0]) for m in models))


# --------------------------------------------------------------------------- the spec's values
#: The largest size a study may give (code units, layer widths, filters, codebook entries, ...):
#: a bigger one is a mistyped value (latent_dim 10**12), refused before the first run.
MAX_SIZE = 2**20


def _expected(spec, value):
    """What a value of the declared :class:`~keraszoo.models.metadata.Hyperparameter` ``spec`` must be, or ``None``.

    ``None`` when ``value`` is one; the variant's constructor still checks its range when the model is built.
    """
    import math
    import numbers

    from keraszoo import argtypes

    def size(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE

    if spec.choices is not None:
        return None if isinstance(value, str) and value in spec.choices else "one of " + ", ".join(spec.choices)
    if spec.type is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if spec.type in (int, argtypes.positive_int):
        return None if size(value) else f"a positive integer <= {MAX_SIZE}"
    if spec.type in (argtypes.int_list, argtypes.hidden_dims):
        ok = isinstance(value, (list, tuple)) and all(size(v) for v in value)
        empty = "" if spec.type is argtypes.hidden_dims else "non-empty "
        return None if ok and (value or empty == "") else f"a {empty}list of positive integers <= {MAX_SIZE}"
    if spec.type is str:
        return None if isinstance(value, str) else "a string"
    return None


def _non_finite(value) -> bool:
    import math

    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _check_value(where, path, arg, value, models):
    """Refuse ``value`` of ``arg`` (at ``path`` of the spec) that the run's Recipe or its models' declarations refuse."""
    from keraszoo.experiments.study import refuse_value
    from keraszoo.models import resolve_preset
    from keraszoo.training.recipe import Recipe

    if arg in _recipe_fields():
        try:  # the Recipe's own check of the field
            Recipe(model=models[0], **{arg: value})
        except ValueError as err:
            raise StudyError(f"{where}: {path}: {err}") from None
        return
    classes = [resolve_preset(m)[0] for m in models]
    spec = next((table[arg] for cls in classes for table in (cls.all_hyperparameters(), cls.all_training_options())
                 if arg in table), None)
    expected = _expected(spec, value) if spec is not None else None
    if expected is None and _non_finite(value):
        expected = "finite numbers"
    if expected is not None:
        hint = _did_you_mean(value, spec.choices) if spec is not None and spec.choices and isinstance(value, str) else ""
        try:
            refuse_value(f"{where}: {path}", expected, value)
        except StudyError as err:
            raise StudyError(f"{err}{hint}") from None


def check_values(study) -> None:
    """Check every value of ``study``'s ``fixed`` and grids (its own and each budget's) before anything runs.

    Recipe fields go through the :class:`~keraszoo.training.recipe.Recipe`'s
    checks; model arguments and training options through their declared
    :class:`~keraszoo.models.metadata.Hyperparameter` (a positive integer, a finite
    number, one of the choices, ...); any other value must hold no NaN or infinity.

    Raises:
        StudyError: naming the value, ``grid.latent_dim[0]: expected a positive integer <= 1048576, got '8' (a string).``
    """
    where = f"Study {study.name!r}"
    grids = [("grid", study.grid)] + [(f"budgets.{b}.grid", f["grid"]) for b, f in study.budgets.items()
                                      if f.get("grid") is not None]
    every_model = list(dict.fromkeys(_resolve_models(study.variants) if study.variants else []))
    for label, grid in grids:
        entries = expand_grid_entries(grid)
        for i, entry in enumerate(entries):
            models = _resolve_models(entry["model"] if "model" in entry else study.variants)
            every_model.extend(m for m in models if m not in every_model)
            at = label if isinstance(grid, dict) else f"{label}[{i}]"
            for arg, values in entry.items():
                if arg != "model":
                    for j, value in enumerate(values):
                        _check_value(where, f"{at}.{arg}[{j}]", arg, value, models)
    for arg, value in study.fixed.items():
        _check_value(where, f"fixed.{arg}", arg, value, every_model)


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_split(settings) -> str:
    """The test split a budget evaluates on: ``"test"`` (all of it) or ``"test[:N]"``."""
    return "test" if settings.eval_examples is None else f"test[:{settings.eval_examples}]"


def _seeds(study, entries, settings) -> list:
    """The seeds each setting runs with: ``0 .. seeds - 1``, or none when the study sets ``seed`` itself."""
    if "seed" in study.fixed or any("seed" in entry for entry in entries):
        return []
    return list(range(settings.seeds)) if settings.seeds > 1 else []


def _validation_fields(settings, dataset) -> dict:
    """The Recipe's ``val_split`` and ``early_stopping`` for the budget's ``val_examples`` (or ``val_fraction``)
    and ``patience``.

    ``val_examples`` images of the ``limit`` training images (the whole train split: its
    size in the dataset catalogue) become the fraction the Recipe holds out; ``val_fraction``
    is that fraction itself (of the run's own training images: one class of the split).
    """
    from keraszoo.data import dataset_info

    fields = {}
    if settings.val_fraction and settings.val_examples:
        raise StudyError(f"A budget holds out either val_examples ({settings.val_examples}) or val_fraction "
                         f"({settings.val_fraction}) of the training images, not both: set the other to null.")
    if settings.val_fraction:
        fields["val_split"] = float(settings.val_fraction)
    elif settings.val_examples:
        n = dataset_info(dataset).splits["train"]
        n = min(n, settings.limit) if settings.limit else n
        if settings.val_examples >= n:
            raise StudyError(f"The budget holds out {settings.val_examples} validation images of the {n} training "
                             f"images of {dataset}: no image would be left to train on; lower val_examples.")
        fields["val_split"] = settings.val_examples / n
    if settings.patience:
        if not (settings.val_examples or settings.val_fraction):
            raise StudyError("A budget's patience (early stopping on the validation loss) needs val_examples "
                             "or val_fraction (validation images held out of the training images).")
        fields["early_stopping"] = settings.patience
    return fields


def run_id_for(study: str, dataset: str, model: str, point: dict, identity: dict) -> str:
    """``<model>-<dataset>[-<arg>=<value>...]-<digest>``: readable, filesystem-safe, unique.

    The varied arguments (``point``) name the run; the digest (8 hex digits of the
    SHA-1 of ``identity``: study, dataset, model, every argument and the budget's
    settings) keeps two different runs apart.
    """
    parts = [model, dataset] + [f"{k}={_fmt(v)}" for k, v in point.items() if k != "model"]
    slug = re.sub(r"[^A-Za-z0-9._,=+-]+", "_", "-".join(parts))[:120]
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def run_digest(run_id: str) -> str:
    """The digest that ends a :func:`run_id_for` id: what names the run whatever order its readable part lists
    the arguments in."""
    return run_id.rsplit("-", 1)[-1]


def plan_runs(study, dataset: str = "mnist", budget: str = "default"):
    """``(runs, skipped)``: the :class:`RunSpec` of each run of ``study`` on ``dataset`` at ``budget``.

    ``skipped`` lists ``{"model", "params", "reason"}`` for the grid points a
    model cannot run (an argument that model does not take, an architecture it
    does not have).

    Raises:
        StudyError: unknown dataset or budget, an unknown model, a grid argument
            no model of the study accepts, the same run twice.
    """
    from keraszoo.data import list_datasets
    from keraszoo.models import resolve_preset

    study = get_study(study)
    check_budget_name(budget)
    if dataset not in list_datasets():
        raise StudyError(f"--dataset must be one of {', '.join(list_datasets())}; got {dataset!r}."
                         f"{_did_you_mean(dataset, list_datasets())}")
    if dataset not in study.datasets:
        raise StudyError(f"Study {study.name!r} runs on {', '.join(study.datasets)}; got --dataset {dataset!r}.")
    check_values(study)
    settings = study.budget(budget)
    entries = expand_grid_entries(study.grid_at(budget))
    fields = _recipe_fields()

    # Which arguments does any model of the study accept?
    points = []  # (model, point)
    for entry in entries:
        models = _resolve_models(entry["model"] if "model" in entry else study.variants)
        for point in expand_grid({k: v for k, v in entry.items() if k != "model"}):
            points.extend((model, dict(model=model, **point) if "model" in entry else point) for model in models)
    all_models = list(dict.fromkeys(m for m, _ in points))
    candidates = set(study.fixed) | {k for e in entries for k in e if k != "model"}
    accepted = {m: {a for a in candidates if _accepts(resolve_preset(m)[0], a)} for m in all_models}
    anyone = set().union(*accepted.values()) | fields
    for source, args in (("fixed", study.fixed), ("grid", {k for e in entries for k in e if k != "model"})):
        for arg in args:
            if arg in RESERVED_ARGS:
                raise StudyError(f"Study {study.name!r}: {source}.{arg}: {arg!r} is set by the command or the budget.")
            if arg not in anyone:
                raise StudyError(
                    f"Study {study.name!r}: {source} argument {arg!r} is accepted by none of its models "
                    f"({', '.join(all_models)}).{_did_you_mean(arg, sorted(_known_args(all_models) | fields))} "
                    "Arguments are the models' "
                    "constructor arguments, their training options and Recipe fields "
                    f"({', '.join(sorted(fields - {'model', 'dataset'}))}).")

    runs, skipped, seen = [], [], {}
    seeds = _seeds(study, entries, settings)
    for (model, point), seed in ((p, s) for p in points for s in (seeds or [None])):
        cls, preset = resolve_preset(model)
        params = {"model": model, **study.fixed, **{k: v for k, v in point.items() if k != "model"}}
        if seed is not None:
            point = {**point, "seed": seed}
            params["seed"] = seed
        unknown = sorted(k for k in params if k != "model" and k not in fields and k not in accepted[model])
        if unknown:
            if seed in (None, seeds[0] if seeds else None):
                skipped.append({"model": model, "params": params,
                                "reason": f"{cls.__name__} ({cls.variant}) takes no argument {', '.join(unknown)}."})
            continue
        architecture = params.get("architecture", preset.get("architecture"))
        if architecture is not None:
            try:
                cls._check_architecture(architecture)
            except ValueError as err:
                if seed in (None, seeds[0] if seeds else None):
                    skipped.append({"model": model, "params": params, "reason": str(err)})
                continue
        recipe_fields = {"epochs": settings.epochs, "limit": settings.limit, "eval_split": test_split(settings)}
        recipe_fields.update(_validation_fields(settings, dataset))
        if "batch_size" not in params:
            recipe_fields["batch_size"] = settings.batch_size
        evaluation = {"num_examples": settings.eval_examples, "knn_train_examples": settings.knn_train_examples,
                      "iwae_samples": settings.iwae_samples, "fid": settings.fid}
        seed = int(params.get("seed", 0))
        identity = {"study": study.name, "dataset": dataset, "params": params, "recipe_fields": recipe_fields,
                    "evaluation": evaluation, "probes": study.probes}
        run_id = run_id_for(study.name, dataset, model, point, identity)
        if run_id in seen:
            raise StudyError(f"Study {study.name!r}: the grid yields the run {run_id} twice ({params}).")
        seen[run_id] = params
        spec = RunSpec(run_id=run_id, study=study.name, dataset=dataset, budget=budget, model=model,
                       variant=cls.variant, params=params, recipe_fields=recipe_fields,
                       evaluation=evaluation, probes=study.probes, seed=seed, epochs=settings.epochs)
        try:
            spec.recipe()  # the Recipe's own checks (lr, batch size, ...)
        except ValueError as err:
            raise StudyError(f"Study {study.name!r}, run {run_id}: {err}") from None
        runs.append(spec)
    runs += _classical_runs(study, dataset, budget, settings, entries, seeds)
    return runs, skipped


def _classical_runs(study, dataset, budget, settings, entries, seeds) -> list:
    """The study's classical references (:mod:`keraszoo.experiments.classical`) at every value of the study arguments
    each is fit at (its ``over``: the code sizes; the anomaly detectors' normal classes and code sizes)."""
    from keraszoo.experiments.classical import CLASSICAL
    from keraszoo.experiments.classical import study_values

    runs = []
    for name in study.classical:
        baseline = CLASSICAL[name]
        for point in expand_grid({arg: study_values(study, entries, arg) for arg in baseline.over}):
            for seed in ([0] if baseline.deterministic else (seeds or [0])):
                params = {"model": name, **point} | ({"seed": seed} if seeds and not baseline.deterministic else {})
                recipe_fields = {"epochs": settings.epochs, "limit": settings.limit,
                                 "eval_split": test_split(settings), "batch_size": settings.batch_size,
                                 **_validation_fields(settings, dataset)}
                evaluation = {"num_examples": settings.eval_examples,
                              "knn_train_examples": settings.knn_train_examples}
                identity = {"study": study.name, "dataset": dataset, "params": params,
                            "recipe_fields": recipe_fields, "evaluation": evaluation, "kind": "classical"}
                named = {k2: v for k2, v in params.items() if k2 != "model"}
                runs.append(RunSpec(run_id=run_id_for(study.name, dataset, name, named, identity), study=study.name,
                                    dataset=dataset, budget=budget, model=name, variant=name, params=params,
                                    recipe_fields=recipe_fields, evaluation=evaluation, probes={}, seed=seed,
                                    epochs=settings.epochs, kind="classical"))
    return runs
