"""Name -> class registry of the autoencoder variants, and the export decorator.

``keraszoo_export("vae")`` registers a class for Keras serialization under the
``keraszoo`` package (registered name ``"keraszoo>VAE"``) and adds it to the
variant registry that ``list_variants()`` returns, so every new variant is
picked up by the test-suite and the training script automatically.

:func:`create_model` is the one way to make a model by name: a variant key
(``"vae"``), a preset (``"beta_vae"``) or a zoo name (``"vae_mnist"``, untrained
or with its pretrained weights); ``resolve_preset`` and ``get_variant`` are the
lookups it is made of.
"""

import difflib

import keras

_VARIANTS = {}


def _did_you_mean(name, known, cutoff=0.6) -> str:
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=cutoff)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def keraszoo_export(key=None):
    """Class decorator: register a keraszoo object for serialization.

    Args:
        key: short variant name (``"vae"``). ``None`` registers a helper
            object (layer, network) for serialization only, without listing
            it as a variant.
    """

    def decorator(cls):
        keras.saving.register_keras_serializable(package="keraszoo")(cls)
        if key is not None:
            if key in _VARIANTS and _VARIANTS[key] is not cls:
                raise ValueError(f"Variant name {key!r} is already registered.")
            _check_flag_meanings(cls)
            cls.variant = key
            _VARIANTS[key] = cls
        return cls

    return decorator


def _check_flag_meanings(cls):
    """Refuse a flag (hyperparameter or training option) that ``cls`` declares with another meaning than a
    registered variant does (type, choices or help): one flag has one meaning on the command line."""
    for table in ("all_hyperparameters", "all_training_options"):
        for other in _VARIANTS.values():
            theirs = getattr(other, table)()
            for name, spec in getattr(cls, table)().items():
                if name in theirs and theirs[name] != spec:
                    raise ValueError(f"{cls.__name__} declares the flag {name!r} ({spec}) with another meaning "
                                     f"than {other.__name__} ({theirs[name]}); rename one of them.")


def list_variants():
    """Returns ``{short_name: class}`` for every registered variant."""
    return dict(_VARIANTS)


def list_presets():
    """``{name: (variant_key, constructor kwargs)}``: every variant key and every preset.

    Presets are the variants' own named configurations (``VAE.presets``:
    ``{"beta_vae": {"beta": 4.0}, ...}``); a preset belongs to the class that
    declares it, not to its subclasses.
    """
    table = {}
    for key, cls in _VARIANTS.items():
        table[key] = (key, {})
        for preset, kwargs in cls.__dict__.get("presets", {}).items():
            if preset in table or preset in _VARIANTS:
                raise ValueError(f"Preset name {preset!r} of {cls.__name__} is already taken.")
            table[preset] = (key, dict(kwargs))
    return table


def resolve_preset(name):
    """``(variant class, constructor kwargs)`` for a variant key or a preset name.

    Raises:
        ValueError: for an unknown name, listing the closest known names.
    """
    table = list_presets()
    if name in table:
        key, kwargs = table[name]
        return _VARIANTS[key], dict(kwargs)
    known = sorted(table)
    raise ValueError(f"Unknown model {name!r}.{_did_you_mean(name, known)} Known: {', '.join(known)}.")


def get_variant(name):
    """Returns the variant class for a short name (``"vae"``) or class name (``"VAE"``).

    Raises:
        ValueError: for an unknown name, listing the closest known names.
    """
    if isinstance(name, type) and name in _VARIANTS.values():
        return name
    if name in _VARIANTS:
        return _VARIANTS[name]
    by_class = {cls.__name__: cls for cls in _VARIANTS.values()}
    if name in by_class:
        return by_class[name]
    hint = _did_you_mean(name, sorted(_VARIANTS) + sorted(by_class), cutoff=0.4)
    raise ValueError(
        f"Unknown autoencoder variant {name!r}.{hint} Known variants: {', '.join(sorted(_VARIANTS))}."
    )


def create_model(name, pretrained=False, **overrides):
    """A keraszoo model by name: a variant key, a preset or a zoo name.

    Args:
        name: a variant key (``"vae"``) or class name (``"VAE"``), a preset
            (``"conv_vae"``, ``"beta_vae"``: :func:`list_presets`), or a zoo
            name (``"vae_mnist"``: ``keraszoo.list_models()``), whose
            architecture comes from the weights manifest.
        pretrained: a zoo name only: load its published weights, verified and
            compiled, as ``keraszoo.load(name)`` does. ``False`` builds the
            architecture untrained.
        **overrides: constructor arguments, over the preset's or the zoo
            model's configuration (``latent_dim=8``, ``input_shape=(32, 32, 3)``).

    Returns:
        the model; untrained models are not compiled (``model.compile()``).

    Raises:
        ValueError: an unknown name (the message lists the closest known names;
            ``UnknownModelError``), ``pretrained=True`` for a name without
            weights, or overrides with ``pretrained=True`` (the weights fit one
            architecture: change the loaded model instead).
    """
    from keraszoo.weights import manifest

    if not isinstance(name, str):
        raise manifest.UnknownModelError(f"Model names are strings, got {type(name).__name__} {name!r}.")
    table = list_presets()
    by_class = {cls.__name__: cls for cls in _VARIANTS.values()}
    if name in table or name in by_class:
        cls, kwargs = resolve_preset(name) if name in table else (by_class[name], {})
        if pretrained:
            published = sorted(z for z, entry in manifest.read_manifest()["models"].items()
                               if entry["model"].get("variant") == cls.variant)
            raise ValueError(f"{name!r} is a variant or preset, without weights; pretrained=True takes a zoo name"
                             + (f" (of this variant: {', '.join(published)})." if published else "."))
        return cls(**{**kwargs, **overrides})
    zoo = manifest.read_manifest()["models"]
    if name in zoo:
        if pretrained:
            if overrides:
                raise ValueError(f"The weights of {name!r} fit its published architecture; create_model takes no "
                                 f"overrides ({', '.join(sorted(overrides))}) with pretrained=True.")
            from keraszoo.weights.loader import load

            return load(name)
        return _zoo_architecture(name, zoo[name], overrides)
    known = sorted(table) + sorted(by_class) + sorted(zoo)
    raise manifest.UnknownModelError(f"Unknown model {name!r}.{_did_you_mean(name, known)} Known: variants and presets "
                                     f"{', '.join(sorted(table))}; zoo models {', '.join(sorted(zoo)) or '(none)'}.")


def _zoo_architecture(name, entry, overrides):
    """The untrained model of the zoo entry ``name``: its serialized class and configuration in the manifest
    (checked and rebuilt as ``keraszoo.load`` rebuilds ``config.json``), with ``overrides``."""
    from keraszoo.models.base import CONFIG_VERSION
    from keraszoo.models.base import BaseAutoEncoder
    from keraszoo.weights.loader import check_config_safety

    config = {**entry["model"]["config"], **overrides}
    cls = keras.saving.get_registered_object(entry["model"]["registered_name"])
    if overrides and isinstance(cls, type) and issubclass(cls, BaseAutoEncoder):
        # the overrides are today's arguments ("mse": the squared error): over the saved config brought up to date
        config = {**cls.upgraded_config(entry["model"]["config"]), **overrides, "config_version": CONFIG_VERSION}
    serialized = {"class_name": entry["model"]["class"], "registered_name": entry["model"]["registered_name"],
                  "config": config}
    check_config_safety(serialized, source=f"the manifest entry of {name!r}")
    return keras.saving.deserialize_keras_object(serialized, safe_mode=True)
