"""What a variant class says about itself, beyond its maths.

Every variant class carries, as class attributes, everything the rest of
keraszoo needs to know about it -- so adding a variant is one file:

* ``title``: what it is, in words (model cards); ``loss_summary``: its loss in one
  line (the README's table of variants);
* ``papers``: the :class:`Paper` it implements (the first is the default;
  ``paper()`` may pick another from the configuration, e.g. beta-VAE);
* ``presets``: named configurations (``{"conv_vae": {"architecture": "conv"}}``),
  accepted wherever a variant name is (``keraszoo train --model conv_vae``);
* ``hyperparameters``: constructor arguments offered as command-line flags
  (:class:`Hyperparameter`), merged along the class hierarchy;
* ``training_options``: arguments of ``compile_options()`` offered as flags
  (e.g. the adversarial autoencoder's ``discriminator_lr``);
* ``reported_metrics``: the variant's own evaluation metrics (what
  ``evaluation_metrics()`` returns) and how a results table prints them;
* ``is_generative``: whether ``sample`` works.

The registry-wide tests check every registered class against this contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Paper:
    """A publication a variant implements."""

    title: str
    url: str

    def as_dict(self) -> dict:
        return {"title": self.title, "url": self.url}

    @property
    def citation(self) -> str:
        """``"Kingma & Welling, 2014"``: the authors and year at the end of the title, else the title."""
        head, _, tail = self.title.rstrip(")").rpartition(" (")
        return tail if head and tail[-4:].isdigit() else self.title


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A constructor (or ``compile_options``) argument offered on the command line.

    Args:
        help: one line for ``--help``.
        type: parses the flag's text (``float``, ``argtypes.positive_int``, ...).
        choices: the accepted values, if a closed set.
    """

    help: str
    type: Callable[[str], Any] = float
    choices: tuple | None = None


@dataclasses.dataclass(frozen=True)
class ReportedMetric:
    """A variant-specific evaluation metric and how a results table prints it.

    ``label`` is a format string: ``{value}`` is the metric, ``{reference}`` the
    metric named by ``reference`` (e.g. the noisy PSNR beside the denoised one).
    """

    name: str
    label: str
    reference: str | None = None

    def render(self, metrics: dict) -> str:
        ref = metrics.get(self.reference) if self.reference else None
        return self.label.format(value=metrics[self.name], reference="?" if ref is None else f"{ref:.2f}")


def constructor_parameters(cls, stop=None) -> dict:
    """``{name: inspect.Parameter}`` of the keyword arguments the constructors along ``cls``'s MRO take (down to
    ``stop``, included): the first class that names an argument gives its parameter, so a subclass's own default
    wins and one that passes it on through ``**kwargs`` keeps its parent's."""
    import inspect

    found = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            for p in inspect.signature(init).parameters.values():
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                    found.setdefault(p.name, p)
        if klass is stop:
            break
    return found


def merged_table(cls, attribute: str) -> dict:
    """``attribute`` (a dict) merged along ``cls``'s MRO, base classes first."""
    table = {}
    for klass in reversed(cls.__mro__):
        table.update(klass.__dict__.get(attribute, {}))
    return table
