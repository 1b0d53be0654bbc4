"""Name -> class registry of the autoencoder variants, and the export decorator.

``keraszoo_export("vae")`` registers a class for Keras serialization under the
``keraszoo`` package (registered name ``"keraszoo>VAE"``) and adds it to the
variant registry that ``list_variants()`` returns, so every new variant is
picked up by the test-suite and the training script automatically.
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
            cls.variant = key
            _VARIANTS[key] = cls
        return cls

    return decorator


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
