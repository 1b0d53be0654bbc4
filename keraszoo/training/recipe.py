"""The typed training recipe: what a run trains, on what, and how.

A :class:`Recipe` is produced by the command line (``keraszoo train``), by
``--recipe NAME`` (a manifest entry's ``recipe["args"]``) and by the experiment
runner, and consumed by :func:`keraszoo.training.train.run`. Its serialized
form, :meth:`Recipe.to_args`, is the flat ``{argument: value}`` dict stored in
every ``metadata.json`` and manifest entry: the engine's fields and only the
model arguments given; :meth:`Recipe.from_args` reads it back (also the form
written by earlier keraszoo versions, with every variant's flag in it).

Where things are (``out``, ``data_dir``, ...) is not part of a recipe: the same
recipe reruns anywhere.
"""

from __future__ import annotations

import dataclasses
import json

from keraszoo.argtypes import SEED_LIMIT
from keraszoo.argtypes import flag_of
from keraszoo.errors import ModelBuildError
from keraszoo.errors import UsageError

#: Recipe fields that do not change the trained weights' values; a backup may
#: be resumed with other values of these.
RUNTIME_FIELDS = (
    "epochs",
    "data_source",
    "strategy",
    "jit_compile",
    "steps_per_execution",
    "deterministic",
    "backup_every",
    "tensorboard",
    "eval",
    "eval_split",
    "eval_batch_size",
)


class ArgumentValueError(UsageError):
    """A training argument is missing, of the wrong kind, or holds a value that cannot train.

    On the command line a bad argument: exit status 2 (``keraszoo train: error: ...``).
    """

    exit_status = 2


def model_flags() -> dict:
    """``{name: Hyperparameter}`` of every registered variant's constructor flags.

    A name declared by several variants (``beta`` by VAE and its subclasses)
    appears once, as its declaring class wrote it (the registry refuses two
    meanings of one name); the table comes from the variant classes, never from here.
    """
    return _merged_flags("all_hyperparameters")


def option_flags() -> dict:
    """``{name: Hyperparameter}`` of every variant's training options (``compile_options``)."""
    return _merged_flags("all_training_options")


def _merged_flags(method) -> dict:
    from keraszoo.models import list_variants

    table = {}
    for cls in list_variants().values():
        for name, spec in getattr(cls, method)().items():
            table.setdefault(name, spec)
    return table


def variants_with_option(name) -> list:
    """The variant keys whose ``training_options`` include ``name``."""
    from keraszoo.models import list_variants

    return sorted(key for key, cls in list_variants().items() if name in cls.all_training_options())


def parse_hparam(text: str):
    """``"name=value"`` -> ``(name, value)`` with JSON-ish value parsing."""
    if "=" not in text:
        raise ArgumentValueError(f"--hparam expects NAME=VALUE, got {text!r}.")
    name, value = text.split("=", 1)
    name = name.strip().replace("-", "_")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return name, parsed


_NOT_FIELDS = ("model_kwargs", "options", "hparam")
#: Fields added after runs were recorded without them: written only when set, so that the flat form (and the
#: fingerprint a resume is checked against) of a run that does not use them stays what it was.
_WRITTEN_WHEN_SET = ("classes",)


@dataclasses.dataclass
class Recipe:
    """One training run, independent of where its files live: what was asked, and nothing else.

    ``model`` is a variant key or preset name (``"beta_vae"``);
    ``model_kwargs`` the constructor arguments given on top of the preset (the
    variant's flags, ``--latent-dim``, ..., and ``--hparam NAME=VALUE``);
    ``options`` the variant's training options (``--discriminator-lr``).
    Making a recipe checks it: the engine's values, and that every model
    argument and option belongs to the variant, with a value of the right kind
    (the numeric ranges of model arguments are the constructor's, when the
    model is built).
    """

    model: str
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)
    hparam: tuple = ()
    # data
    dataset: str = "mnist"
    data_source: str = "auto"
    binarize: str = "none"
    limit: int | None = None
    #: train on the images of these classes only (``None``: every class): a one-class model (anomaly detection).
    classes: tuple | None = None
    val_split: float = 0.0
    # optimization
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    drop_remainder: bool = False
    early_stopping: int = 0
    seed: int = 0
    # runtime
    strategy: str = "default"
    mixed_precision: bool = False
    jit_compile: str = "auto"
    steps_per_execution: object = "auto"
    deterministic: str = "auto"
    # outputs
    backup_every: int = 200
    tensorboard: bool = False
    eval: bool = True
    eval_split: str = "test"
    eval_batch_size: int = 500

    def __post_init__(self):
        self.hparam = tuple(str(item) for item in self.hparam)
        check_recipe_values(self)
        check_model_arguments(self)

    # ------------------------------------------------------------ the flat form
    @classmethod
    def from_args(cls, args: dict) -> Recipe:
        """A recipe from the flat ``{argument: value}`` form (:meth:`to_args`, a parsed command line).

        Also reads the records of earlier keraszoo versions, which hold every
        flag of every variant then registered: a ``None`` value is "not
        given", whatever its name (a plugin's flag included). A given value
        that is neither a recipe field, a training option nor an argument of
        the variant is an error.
        """
        args = {k: v for k, v in dict(args).items() if v is not None}
        names = {f.name for f in dataclasses.fields(cls)} - set(_NOT_FIELDS)
        fields = {k: args.pop(k) for k in list(args) if k in names}
        hparam = tuple(str(item) for item in args.pop("hparam", None) or ())
        options = {k: args.pop(k) for k in list(args) if k in option_flags()}
        unknown = sorted(k for k in args if k not in model_flags() and not _takes(fields.get("model"), k))
        if unknown:
            raise UsageError(f"Unknown training argument(s) {unknown} in the recipe.")
        if fields.get("model") is None:
            raise ArgumentValueError("A recipe needs a model (a variant or preset name).")
        model_kwargs = {k: _plain(v) for k, v in args.items()}
        for item in hparam:  # after the flags: --hparam wins, as on the command line
            name, value = parse_hparam(item)
            model_kwargs[name] = value
        return cls(model_kwargs=model_kwargs, options=options, hparam=hparam, **fields)

    def to_args(self) -> dict:
        """The flat, JSON-ready form: the engine's fields, and the model arguments and options given."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_FIELDS
               and not (f.name in _WRITTEN_WHEN_SET and getattr(self, f.name) is None)}
        from_hparam = {parse_hparam(item)[0] for item in self.hparam}
        out.update({k: v for k, v in self.model_kwargs.items() if k not in from_hparam})
        out.update(self.options)
        out["hparam"] = list(self.hparam)
        return {k: _plain(v) for k, v in sorted(out.items())}

    def semantic_args(self) -> dict:
        """:meth:`to_args` without the runtime fields: what a resumed backup must match."""
        return {k: v for k, v in self.to_args().items() if k not in RUNTIME_FIELDS}

    # ------------------------------------------------------------ the model
    def variant_class(self):
        """The variant class of :attr:`model` (a variant key or a preset)."""
        from keraszoo.models import resolve_preset

        try:
            return resolve_preset(self.model)[0]
        except ValueError as err:
            raise UsageError(f"--model: {err}") from None

    def model_spec(self):
        """``(variant_key, constructor kwargs)``: the preset, then the given kwargs, then the seed."""
        from keraszoo.models import resolve_preset

        cls, kwargs = self.variant_class(), resolve_preset(self.model)[1]
        kwargs.update(self.model_kwargs)
        kwargs.setdefault("seed", self.seed)
        return cls.variant, kwargs

    def build_model(self, input_shape):
        """The variant, built for ``input_shape``, with the recipe's hyperparameters.

        Raises:
            ModelBuildError: the variant's constructor refuses the configuration
                (e.g. a conv stack too deep for the images).
        """
        from keraszoo.models import create_model

        kwargs = dict(self.model_kwargs)
        kwargs.setdefault("seed", self.seed)
        try:
            return create_model(self.model, input_shape=input_shape, **kwargs)  # the preset's arguments, then these
        except (TypeError, ValueError) as e:
            cls, preset = self.variant_class(), self.model_spec()[1]
            raise ModelBuildError(f"Cannot build {cls.__name__} with {preset}: {e}") from e

    def compile_kwargs(self, cls) -> dict:
        """``compile`` arguments of the recipe's training options for variant class ``cls``."""
        _check_options(cls, self.options)
        return cls.compile_options(**self.options)


def _takes(model, name) -> bool:
    """Whether the variant of ``model`` (a name) takes constructor argument ``name``."""
    from keraszoo.models import resolve_preset

    try:
        cls = resolve_preset(model)[0]
    except (TypeError, ValueError):
        return False
    return name in accepted_arguments(cls)


def _check_options(cls, options):
    for name in options:
        if name not in cls.all_training_options():
            raise UsageError(f"{flag_of(name)} applies to {', '.join(variants_with_option(name))} only "
                             f"(not {cls.variant}).")


def check_model_arguments(recipe) -> None:
    """Refuse model arguments and options that the recipe's variant does not take, or of the wrong kind.

    The variant decides: its constructor's arguments (``--hparam`` reaches
    any of them), its declared flags' kinds and choices, its training options.
    """
    cls = recipe.variant_class()
    check_hyperparameters(cls, recipe.model_kwargs)
    flags = cls.all_hyperparameters()
    for name, value in recipe.model_kwargs.items():
        if name in flags:
            _check_kind(name, flags[name], value, cls)
    _check_options(cls, recipe.options)
    options = cls.all_training_options()
    for name, value in recipe.options.items():
        _check_kind(name, options[name], value, cls)


def _check_kind(name, spec, value, cls) -> None:
    from keraszoo import argtypes

    ints = (argtypes.int_list, argtypes.hidden_dims)
    if spec.choices is not None:
        ok, expected = value in spec.choices, "one of " + ", ".join(map(str, spec.choices))
    elif spec.type is float:
        ok, expected = _is_real(value), "a number"
    elif spec.type in (int, argtypes.positive_int):
        ok, expected = _is_int(value), "an integer"
    elif spec.type in ints:
        ok = isinstance(value, (list, tuple)) and all(_is_int(v) for v in value)
        ok, expected = ok and (len(value) or spec.type is argtypes.hidden_dims), "a list of integers"
    elif spec.type is str:
        ok, expected = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise ArgumentValueError(f"{flag_of(name)} must be {expected} ({cls.__name__}: {spec.help}); got {value!r}.")


def _is_int(value) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


#: Recipe fields that are true or false, and those with a closed set of values (the command line's choices).
_BOOL_FIELDS = ("drop_remainder", "mixed_precision", "tensorboard", "eval")
_CHOICE_FIELDS = {"binarize": ("none", "dynamic", "static", "threshold"), "data_source": ("auto", "tfds", "npz"),
                  "strategy": ("default", "mirrored", "multiworker"), "jit_compile": ("auto", "on", "off"),
                  "deterministic": ("auto", "on", "off")}


def check_recipe_values(recipe) -> None:
    """Refuse optimization values that cannot train (a zero, negative or NaN learning rate, 0 epochs, ...).

    Run when a :class:`Recipe` is made, so a bad value is reported before any
    folder is created or any data is read.

    Raises:
        ArgumentValueError: naming the flag, what it must be and the value received.
    """
    import math

    def bad(flag, expected, value):
        raise ArgumentValueError(f"--{flag} must be {expected}; got {value!r}.")

    lr = recipe.lr
    if not _is_real(lr) or not math.isfinite(float(lr)) or float(lr) <= 0:
        bad("lr", "a finite number > 0 (the Adam learning rate, e.g. 1e-3)", lr)
    for flag, name in (("epochs", "epochs"), ("batch-size", "batch_size"), ("eval-batch-size", "eval_batch_size")):
        value = getattr(recipe, name)
        if not _is_int(value) or value < 1:
            bad(flag, "a positive integer", value)
    if recipe.limit is not None and (not _is_int(recipe.limit) or recipe.limit < 1):
        bad("limit", "a positive integer (or not given)", recipe.limit)
    if recipe.classes is not None:
        if isinstance(recipe.classes, (str, bytes)) or not isinstance(recipe.classes, (list, tuple)) or \
                not recipe.classes or not all(_is_int(c) and 0 <= c < 2**31 for c in recipe.classes) or \
                len(set(recipe.classes)) != len(recipe.classes):
            bad("classes", "a non-empty list of distinct class indices >= 0 (or not given: every class)", recipe.classes)
        recipe.classes = tuple(int(c) for c in recipe.classes)
    for flag, name, meaning in (("backup-every", "backup_every", "0: every epoch only"),
                                ("early-stopping", "early_stopping", "0: off")):
        value = getattr(recipe, name)
        if not _is_int(value) or value < 0:
            bad(flag, f"an integer >= 0 ({meaning})", value)
    split = recipe.val_split
    if not _is_real(split) or not 0 <= float(split) < 1:
        bad("val-split", "a fraction in [0, 1)", split)
    if not _is_int(recipe.seed) or not 0 <= recipe.seed < SEED_LIMIT:
        bad("seed", "an integer in [0, 2**32) (NumPy's and Keras' seed range)", recipe.seed)
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(recipe, name), bool):
            bad(name.replace("_", "-"), "true or false", getattr(recipe, name))
    for name, choices in _CHOICE_FIELDS.items():
        if not isinstance(getattr(recipe, name), str) or getattr(recipe, name) not in choices:
            bad(name.replace("_", "-"), "one of " + ", ".join(choices), getattr(recipe, name))
    if recipe.steps_per_execution != "auto" and not (_is_int(recipe.steps_per_execution) and recipe.steps_per_execution >= 1):
        bad("steps-per-execution", "auto or a positive integer", recipe.steps_per_execution)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def accepted_arguments(cls) -> set:
    """The constructor arguments of variant class ``cls`` (along its MRO, down to ``BaseAutoEncoder``)."""
    from keraszoo.models import BaseAutoEncoder
    from keraszoo.models.metadata import constructor_parameters

    return set(constructor_parameters(cls, stop=BaseAutoEncoder))


def check_hyperparameters(cls, kwargs: dict):
    """Refuse keyword arguments that ``cls`` (a variant class) does not take."""
    accepted = accepted_arguments(cls)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise UsageError(
            f"{cls.__name__} ({cls.variant}) has no hyperparameter(s) "
            f"{unknown}; it accepts {sorted(accepted - {'args', 'kwargs'})}."
        )
