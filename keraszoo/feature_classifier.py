"""A small MNIST / CIFAR-10 classifier whose penultimate layer is the feature
space of keraszoo's Fréchet distance (``fd``), an FID-style sample-quality
score (Heusel et al., 2017).

Inception-v3 weights (the FID standard) cannot be downloaded here, and an
ImageNet network is a poor judge of 28x28 digits anyway, so keraszoo trains and
ships its own feature network per dataset (``keraszoo/assets/feature_classifier_<dataset>/``):

    Conv2D(32, 3, relu) -> MaxPool -> Conv2D(64, 3, relu) -> MaxPool ->
    Flatten -> Dense(128, relu)  [features] -> Dense(10)

trained on the dataset's train split by ``python training/train_feature_classifier.py``,
which records its test accuracy next to the weights. Fréchet distances measured
with different feature networks are not comparable: keraszoo's numbers compare
keraszoo models with each other, not with published FIDs.
"""

import json
import pathlib

import numpy as np

ASSETS = pathlib.Path(__file__).parent / "assets"
FEATURE_LAYER = "features"


def asset_dir(dataset):
    return ASSETS / f"feature_classifier_{dataset}"


def build_classifier(image_shape, num_classes=10):
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(image_shape), name="image")
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="feature_classifier")


def load_classifier(dataset="mnist"):
    """Returns ``(classifier, info)``: the bundled classifier of ``dataset``, images in [0, 1] -> class logits."""
    directory = asset_dir(dataset)
    info_path = directory / "metadata.json"
    if not info_path.exists():
        raise FileNotFoundError(
            f"No feature classifier is bundled for {dataset!r} (looked in {directory}). "
            f"Train one with: python training/train_feature_classifier.py --dataset {dataset}")
    info = json.loads(info_path.read_text())
    classifier = build_classifier(tuple(info["image_shape"]))
    classifier.load_weights(directory / "model.weights.h5")
    return classifier, info


def load_feature_extractor(dataset="mnist"):
    """Returns ``(extractor, info)``: a model mapping images in [0, 1] to 128 features."""
    import keras

    classifier, info = load_classifier(dataset)
    extractor = keras.Model(classifier.input, classifier.get_layer(FEATURE_LAYER).output)
    return extractor, info


def features(extractor, images, batch_size=500):
    images = np.asarray(images, dtype="float32")
    return np.concatenate([np.asarray(extractor(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)], axis=0)


def _sqrtm_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between two feature sets.

    ``tr((S_a S_b)^(1/2))`` is computed as the sum of the square roots of the
    eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric PSD), which avoids the
    complex round-off of a general matrix square root.
    """
    a = np.asarray(features_a, dtype="float64")
    b = np.asarray(features_b, dtype="float64")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sum(np.sqrt(np.clip(middle, 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)
