"""How well a conditional variant draws the class it is asked for: ``conditional_accuracy``, with the bundled
feature classifier of the model's image shape (``ConditionalVAE.evaluation_metrics`` reports it)."""

import json

import numpy as np

from keraszoo.models import checks
from keraszoo.models.numeric import to_numpy


def classifier_dataset(image_shape, num_classes=10):
    """The dataset whose bundled feature classifier takes ``image_shape`` images (the first by name), or ``None``."""
    from keraszoo import feature_classifier as fc

    for info_path in sorted(fc.ASSETS.glob("feature_classifier_*/metadata.json")):
        info = json.loads(info_path.read_text())
        if tuple(info["image_shape"]) == tuple(image_shape) and num_classes <= info.get("num_classes", 10):
            return info["dataset"]
    return None


def conditional_accuracy(model, dataset="mnist", per_class=200, seed=0, batch_size=500, classifier=None):
    """Fraction of ``model.sample(labels=c)`` images that the bundled classifier of ``dataset`` calls ``c``.

    ``per_class`` samples of every class ``0 .. num_classes - 1`` (seeds ``seed``, ``seed + 1``, ...
    per batch), each classified by ``keraszoo.feature_classifier.load_classifier(dataset)``
    (or ``classifier``, a model from images to class logits); 1.0 = every sample shows its class.
    """
    from keraszoo import feature_classifier as fc

    per_class = checks.check_positive_int("per_class", per_class)
    classifier = fc.load_classifier(dataset)[0] if classifier is None else classifier
    labels = np.repeat(np.arange(model.num_classes), per_class)
    hits = 0
    for i, start in enumerate(range(0, len(labels), batch_size)):
        wanted = labels[start:start + batch_size]
        images = model.sample(len(wanted), labels=wanted, seed=seed + i)
        hits += int(np.sum(np.argmax(to_numpy(classifier(images, training=False)), axis=-1) == wanted))
    return hits / len(labels)
