"""The typed training recipe: what a run trains, on what, and how.

A :class:`Recipe` is produced by the command line (``keraszoo train``), by
``--recipe NAME`` (a manifest entry's ``recipe["args"]``) and by the experiment
runner, and consumed by :func:`keraszoo.training.train.run`. Its serialized
form, :meth:`Recipe.to_args`, is the flat ``{argument: value}`` dict stored in
every ``metadata.json`` and manifest entry; :meth:`Recipe.from_args` reads it
back (also the form written by earlier keraszoo versions).

Where things are (``out``, ``data_dir``, ...) is not part of a recipe: the same
recipe reruns anywhere.
"""

from __future__ import annotations

import dataclasses
import json

from keraszoo.argtypes import flag_of
from keraszoo.errors import ModelBuildError  # noqa: F401 - re-exported
from keraszoo.errors import UsageError


class BackupMismatchError(UsageError):
    """A backup folder holds a run of another configuration."""


class BackupDamagedError(UsageError):
    """The latest backup of a run cannot be read (a damaged or truncated file)."""


class CheckpointWriteError(UsageError, OSError):
    """A backup or the final model could not be written (a full disk, a file-size limit, no permission).

    Also an ``OSError``: ``errno`` and ``filename`` are those of the failed write.
    """

    def __init__(self, message, *, errno=None, filename=None):
        super().__init__(message)
        self.errno = errno
        self.filename = filename

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(UsageError):
    """The training loss became NaN or infinite; the run stopped (nothing was saved as the result)."""

    def __init__(self, message, *, epoch=None, step=None, global_step=None, backup_step=None):
        super().__init__(message)
        #: 1-based epoch, 1-based step in that epoch and global step of the first non-finite loss.
        self.epoch, self.step, self.global_step = epoch, step, global_step
        #: global step of the last good backup (0: none).
        self.backup_step = backup_step


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


def model_flags() -> dict:
    """``{name: Hyperparameter}`` of every registered variant's constructor flags.

    A name declared by several variants (``beta`` by VAE and its subclasses)
    appears once; the table comes from the variant classes, never from here.
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
        raise UsageError(f"--hparam expects NAME=VALUE, got {text!r}.")
    name, value = text.split("=", 1)
    name = name.strip().replace("-", "_")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return name, parsed


@dataclasses.dataclass
class Recipe:
    """One training run, independent of where its files live.

    ``model`` is a variant key or preset name (``"beta_vae"``);
    ``model_kwargs`` the constructor arguments given on top of the preset (the
    variants' flags, ``--latent-dim``, ..., and ``--hparam NAME=VALUE``);
    ``options`` the variants' training options (``--discriminator-lr``).
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
        check_recipe_values(self)

    # ------------------------------------------------------------ the flat form
    @classmethod
    def from_args(cls, args: dict) -> Recipe:
        """A recipe from the flat ``{argument: value}`` form (``to_args``, an argparse namespace)."""
        args = dict(args)
        flags, options = model_flags(), option_flags()
        given_flags = {k: args.pop(k) for k in list(args) if k in flags}
        given_options = {k: args.pop(k) for k in list(args) if k in options}
        model_kwargs = {k: _plain(v) for k, v in given_flags.items() if v is not None}
        opts = {k: v for k, v in given_options.items() if v is not None}
        hparam = tuple(str(item) for item in args.pop("hparam", None) or ())
        for item in hparam:  # after the flags: --hparam wins, as on the command line
            name, value = parse_hparam(item)
            model_kwargs[name] = value
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(args) - fields)
        if unknown:
            raise UsageError(f"Unknown training argument(s) {unknown} in the recipe.")
        if args.get("model") is None:
            raise UsageError("A recipe needs a model (a variant or preset name).")
        return cls(model_kwargs=model_kwargs, options=opts, hparam=hparam, **args)

    def to_args(self) -> dict:
        """The flat, JSON-ready form: every flag of every variant (``None`` when not set)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("model_kwargs", "options", "hparam")}
        from_hparam = {parse_hparam(item)[0] for item in self.hparam}
        for name in model_flags():
            given = name in self.model_kwargs and name not in from_hparam
            out[name] = self.model_kwargs[name] if given else None
        for name in option_flags():
            out[name] = self.options.get(name)
        out["hparam"] = list(self.hparam)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(out.items())}

    def semantic_args(self) -> dict:
        """:meth:`to_args` without the runtime fields: what a resumed backup must match."""
        return {k: v for k, v in self.to_args().items() if k not in RUNTIME_FIELDS}

    # ------------------------------------------------------------ the model
    def model_spec(self):
        """``(variant_key, constructor kwargs)``: the preset, then the given kwargs, then the seed."""
        from keraszoo.models import resolve_preset

        try:
            cls, kwargs = resolve_preset(self.model)
        except ValueError as err:
            raise UsageError(f"--model: {err}") from None
        kwargs.update(self.model_kwargs)
        kwargs.setdefault("seed", self.seed)
        return cls.variant, kwargs

    def build_model(self, input_shape):
        """The variant, built for ``input_shape``, with the recipe's hyperparameters."""
        from keraszoo.models import get_variant

        key, kwargs = self.model_spec()
        cls = get_variant(key)
        check_hyperparameters(cls, kwargs)
        try:
            return cls(input_shape=input_shape, **kwargs)
        except (TypeError, ValueError) as e:
            raise UsageError(f"Cannot build {cls.__name__} with {kwargs}: {e}") from e

    def compile_kwargs(self, cls) -> dict:
        """``compile`` arguments of the recipe's training options for variant class ``cls``."""
        for name in self.options:
            if name not in cls.all_training_options():
                raise UsageError(f"{flag_of(name)} applies to {', '.join(variants_with_option(name))} only "
                                 f"(not {cls.variant}).")
        return cls.compile_options(**self.options)


def _is_int(value) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_recipe_values(recipe) -> None:
    """Refuse optimization values that cannot train (a zero, negative or NaN learning rate, 0 epochs, ...).

    Run when a :class:`Recipe` is made, so a bad value is reported before any
    folder is created or any data is read.

    Raises:
        UsageError: naming the flag, what it must be and the value received.
    """
    import math

    def bad(flag, expected, value):
        raise UsageError(f"--{flag} must be {expected}; got {value!r}.")

    lr = recipe.lr
    if not _is_real(lr) or not math.isfinite(float(lr)) or float(lr) <= 0:
        bad("lr", "a finite number > 0 (the Adam learning rate, e.g. 1e-3)", lr)
    for flag, name in (("epochs", "epochs"), ("batch-size", "batch_size"), ("eval-batch-size", "eval_batch_size")):
        value = getattr(recipe, name)
        if not _is_int(value) or value < 1:
            bad(flag, "a positive integer", value)
    if recipe.limit is not None and (not _is_int(recipe.limit) or recipe.limit < 1):
        bad("limit", "a positive integer (or not given)", recipe.limit)
    for flag, name, meaning in (("backup-every", "backup_every", "0: every epoch only"),
                                ("early-stopping", "early_stopping", "0: off")):
        value = getattr(recipe, name)
        if not _is_int(value) or value < 0:
            bad(flag, f"an integer >= 0 ({meaning})", value)
    split = recipe.val_split
    if not _is_real(split) or not 0 <= float(split) < 1:
        bad("val-split", "a fraction in [0, 1)", split)
    if not _is_int(recipe.seed):
        bad("seed", "an integer", recipe.seed)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def check_hyperparameters(cls, kwargs: dict):
    """Refuse keyword arguments that ``cls`` (a variant class) does not take."""
    import inspect

    from keraszoo.models import BaseAutoEncoder

    accepted = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                accepted.add(p.name)
        if klass is BaseAutoEncoder:
            break
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise UsageError(
            f"{cls.__name__} ({cls.variant}) has no hyperparameter(s) "
            f"{unknown}; it accepts {sorted(accepted - {'self', 'args', 'kwargs'})}."
        )


def read_recipe_args(name: str, manifest_path=None):
    """The ``recipe["args"]`` of manifest entry ``name`` (a dict or an argv list)."""
    from keraszoo.weights import manifest

    entry = manifest.get_entry(name, path=manifest_path)
    recipe = entry.get("recipe") or {}
    args = recipe.get("args")
    if args is None:
        raise UsageError(
            f"The manifest entry {name!r} has no recipe['args'] to rerun (its command was: "
            f"{recipe.get('command', '?')!r})."
        )
    if not isinstance(args, (dict, list)):
        raise UsageError(f"recipe['args'] of {name!r} must be a dict or a list, got {args!r}.")
    return args
