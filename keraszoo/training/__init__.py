"""The training engine: a typed :class:`~keraszoo.training.recipe.Recipe`, resumable
fitting, Keras callbacks and the runtime choices (strategy, determinism, XLA,
steps per execution, dtype policy).

``keraszoo train`` / ``keraszoo finetune`` (and the thin ``training/*.py``
scripts of a source checkout) parse their command line into this engine, so
retraining works from an installed wheel::

    from keraszoo.training import Recipe, run
    result = run(Recipe(model="beta_vae", model_kwargs={"latent_dim": 10}, epochs=5), out="runs/bvae")
    result.status, result.metrics, result.model   # 0, the saved metrics, the trained model

TensorFlow and Keras are imported only when a run starts.
"""

from keraszoo.training.recipe import Recipe
from keraszoo.training.recipe import UsageError


def run(recipe, out, **kwargs):
    """Train ``recipe`` into the ``save_pretrained`` folder ``out`` (see :func:`keraszoo.training.train.run`)."""
    from keraszoo.training.train import run as _run

    return _run(recipe, out, **kwargs)


__all__ = ["Recipe", "UsageError", "run"]
