"""Measures a model on a dataset; the zoo's published metrics come only from here.

``evaluate(model, "mnist")`` returns a flat ``{metric: value}`` dict:

* every variant: ``mse_per_pixel``, ``bce_nats_per_image`` (Bernoulli NLL of the
  deterministic reconstruction, summed over pixels), ``psnr_db`` (mean over
  images of ``10 log10(1 / MSE_image)``), and the quality of the codes as class
  features: ``knn_accuracy`` (k = 5 nearest train codes, Euclidean) and
  ``linear_probe_accuracy`` (softmax regression fit on the train codes, scored
  on the test codes; a model with ``code_features`` -- the VQ-VAE, whose codes are
  a grid of indices -- is measured on those flat features of its codes instead);
* VAE family (``has_posterior``): ``active_units`` (units whose posterior mean
  varies across the data with variance > 0.01, Burda et al. 2016); with a decoder
  likelihood (``has_likelihood``: not the squared error ``"mse"``, which is no
  log-density) also ``negative_elbo_nats`` (one posterior sample) and
  ``iwae_nll_nats`` (importance-weighted bound with ``iwae_samples`` samples;
  published numbers use 5000); with the discretized logistic likelihood (an exact
  probability of the 8-bit image) also both in bits/dim,
  ``negative_elbo_bits_per_dim`` and ``iwae_bits_per_dim``;
* sparse AE: ``mean_activation`` and ``near_zero_fraction`` (|h| < 0.01);
* contractive AE: ``mean_jacobian_frobenius`` (mean of ``||J_f(x)||_F``);
* denoising AE: ``denoised_psnr_db`` at the training noise and
  ``denoised_psnr_2x_db`` at twice it (with ``noisy_psnr_*`` for reference);
* adversarial AE: ``discriminator_accuracy`` on test codes vs prior samples
  (0.5 = the code distribution is indistinguishable from the prior);
* generative variants: ``sample_fd``, the Fréchet distance between samples and
  the test images in the feature space of keraszoo's own small classifier
  (``keraszoo.feature_classifier``; not comparable with Inception FIDs);
* conditional variants (``requires_labels``: ``ConditionalVAE``) take the class
  labels in every call: the images are encoded and reconstructed with their
  true labels (the k-NN and probe codes too, so they measure what the code holds
  beyond the label), the likelihoods are ``log p(x|y)``, and the samples of
  ``sample_fd`` are drawn with labels spread evenly over the classes;
  ``conditional_accuracy`` comes from the variant's own hook.

All image metrics are measured on float images in [0, 1] (binarized first when
``binarize="static"``, the convention for likelihoods on MNIST).
"""

import math
import time

import numpy as np

from keraszoo.models.numeric import batches as _batches
from keraszoo.models.numeric import map_batches as _map
from keraszoo.models.numeric import psnr
from keraszoo.models.numeric import to_numpy as _np
from keraszoo.utils import format_number

__all__ = [
    "active_units",
    "evaluate",
    "format_table",
    "iwae_nll",
    "knn_accuracy",
    "linear_probe_accuracy",
    "psnr",
    "reconstruction_metrics",
    "sample_frechet_distance",
]

DEFAULT_BATCH_SIZE = 256


# --------------------------------------------------------------------------- metrics
def _labelled(model, labels, method="evaluate"):
    """``labels`` for a conditional model (``requires_labels``; refused when missing), ``None`` for the others."""
    if not model.requires_labels:
        return None
    if labels is None:
        raise ValueError(f"{type(model).__name__} is conditional: {method} needs the class labels of the images, "
                         "e.g. evaluate(model, (x, y)).")
    return np.asarray(labels)


def _map_given(fn, x, labels, batch_size):
    """``fn(xb)`` batch by batch, ``fn(xb, yb)`` when ``labels`` is not ``None``; NumPy."""
    if labels is None:
        return _map(fn, x, batch_size)
    return np.concatenate([_np(fn(x[i:i + batch_size], labels[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)], axis=0)


def reconstruction_metrics(model, x, batch_size=DEFAULT_BATCH_SIZE, labels=None):
    """``mse_per_pixel``, ``bce_nats_per_image`` and ``psnr_db`` of ``model.reconstruct`` (given ``labels``: conditional models)."""
    from keraszoo.models import losses

    labels = _labelled(model, labels, "reconstruction_metrics")
    mse_img, bce_img = [], []
    for i, xb in enumerate(_batches(np.asarray(x, dtype="float32"), batch_size)):
        given = () if labels is None else (labels[i * batch_size:(i + 1) * batch_size],)
        logits = model.decode_logits(model.encode(xb, *given), *given)
        rec = 1.0 / (1.0 + np.exp(-_np(logits).astype("float64")))
        mse_img.append(((xb - rec) ** 2).reshape(len(xb), -1).mean(1))
        bce_img.append(_np(losses.bernoulli_nll(xb, logits)))
    mse_img, bce_img = np.concatenate(mse_img), np.concatenate(bce_img)
    return {
        "mse_per_pixel": float(mse_img.mean()),
        "bce_nats_per_image": float(bce_img.mean()),
        "psnr_db": float(np.mean(10 * np.log10(1.0 / np.maximum(mse_img, 1e-10)))),
    }


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=5, chunk=1000):
    """Accuracy of a k-nearest-neighbour vote (Euclidean) of test codes among train codes."""
    train_codes = np.asarray(train_codes, "float64")
    test_codes = np.asarray(test_codes, "float64")
    train_labels = np.asarray(train_labels).astype(int)
    num_classes = int(max(train_labels.max(), np.max(test_labels)) + 1)
    sq_train = (train_codes ** 2).sum(1)
    predictions = []
    for start in range(0, len(test_codes), chunk):
        q = test_codes[start:start + chunk]
        d = sq_train[None, :] - 2 * q @ train_codes.T  # + |q|^2 does not change the ranking
        idx = np.argpartition(d, k, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, idx, 1), axis=1)
        idx = np.take_along_axis(idx, order, 1)
        votes = np.zeros((len(q), num_classes))
        for rank in range(k):  # nearer neighbours break ties: weight 1 + tiny rank bonus
            votes[np.arange(len(q)), train_labels[idx[:, rank]]] += 1.0 + 1e-3 * (k - rank)
        predictions.append(votes.argmax(1))
    return float(np.mean(np.concatenate(predictions) == np.asarray(test_labels).astype(int)))


def linear_probe_accuracy(train_codes, train_labels, test_codes, test_labels, steps=300, l2=1e-4, lr=0.1):
    """Multinomial logistic regression on standardized codes (full-batch Adam, NumPy).

    Convex and started at zero, so the result is deterministic.
    """
    xtr = np.asarray(train_codes, "float64")
    mean, std = xtr.mean(0), xtr.std(0) + 1e-8
    xtr = (xtr - mean) / std
    xte = (np.asarray(test_codes, "float64") - mean) / std
    ytr = np.asarray(train_labels).astype(int)
    num_classes = int(max(ytr.max(), np.max(test_labels)) + 1)
    onehot = np.eye(num_classes)[ytr]
    w = np.zeros((xtr.shape[1], num_classes))
    b = np.zeros(num_classes)
    m_w, v_w, m_b, v_b = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for t in range(1, steps + 1):
        logits = xtr @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(xtr)
        g_w, g_b = xtr.T @ g + l2 * w, g.sum(0)
        for param, grad, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad ** 2
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return float(np.mean((xte @ w + b).argmax(1) == np.asarray(test_labels).astype(int)))


def active_units(codes, threshold=0.01):
    """Number of code units whose value varies across the data with variance > ``threshold``."""
    return int(np.sum(np.var(np.asarray(codes, "float64"), axis=0) > threshold))


def iwae_nll(model, x, num_samples, batch_size=16, chunk_size=None, verbose=False, labels=None):
    """``-mean log p(x)`` (``log p(x|y)`` given ``labels``: conditional models) with ``num_samples`` importance samples (nats)."""
    labels = _labelled(model, labels, "iwae_nll")
    values = []
    start_time = time.time()
    for i, xb in enumerate(_batches(x, batch_size)):
        given = () if labels is None else (labels[i * batch_size:(i + 1) * batch_size],)
        values.append(_np(model.log_likelihood(xb, *given, num_samples=num_samples, chunk_size=chunk_size)))
        if verbose and (i % 50 == 0):
            done = sum(len(v) for v in values)
            print(f"  iwae k={num_samples}: {done}/{len(x)} images, {time.time() - start_time:.0f}s", flush=True)
    return float(-np.mean(np.concatenate(values)))


# --------------------------------------------------------------------------- driver
def _load_split(data, split, source, data_dir, binarize, num_examples):
    from keraszoo import data as data_module

    x, y = data_module.load_arrays(data, split, source=source, data_dir=data_dir, binarize=binarize)
    if num_examples is not None:
        x, y = x[:num_examples], y[:num_examples]
    return np.asarray(x, "float32"), np.asarray(y)


def _check_model(model):
    from keraszoo.models import BaseAutoEncoder

    if not isinstance(model, BaseAutoEncoder):
        hint = f" (load it first: keraszoo.load({model!r}))" if isinstance(model, str) else ""
        raise TypeError(f"evaluate expects a keraszoo model, got {type(model).__name__}{hint}.")


def evaluate(model, data="mnist", *, split="test", source="npz", data_dir=None, num_examples=None,
             batch_size=DEFAULT_BATCH_SIZE, iwae_samples=None, binarize=None, train_data=None,
             knn=True, probe=True, fid=True, max_train_examples=None, seed=0, verbose=False, dataset=None):
    """Measures ``model`` and returns ``{metric: value}`` (see the module docstring).

    Args:
        model: a keraszoo model (e.g. from ``keraszoo.load``).
        data: a dataset name (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``)
            read through ``keraszoo.data.load_arrays``, or a tuple ``(x, y)`` of
            test arrays (float in [0, 1], ``y`` may be ``None``).
        split: the evaluated split of a named dataset.
        source: ``"npz"`` (``KERASZOO_DATA_DIR``/``data_dir``) or ``"tfds"``.
        num_examples: evaluate the first N examples only (quick runs).
        iwae_samples: importance samples for ``iwae_nll_nats`` (the VAE family with a likelihood, ``has_likelihood``);
            ``None`` skips it. Published numbers use 5000.
        binarize: ``None`` or ``"static"`` (fixed-seed Bernoulli binarization).
        train_data: ``(x, y)`` whose codes fit the k-NN / probe when ``data``
            is given as arrays; a named dataset uses its train split.
        dataset: the name of the dataset that arrays given as ``data`` come
            from (binarized as ``binarize`` says): then its train split fits
            the k-NN / probe (unless ``train_data`` is given) and ``fid``
            applies, as for a named ``data``.
        knn, probe: compute the code-quality metrics (need labels).
        fid: for generative models on a named dataset with a bundled feature
            classifier, ``sample_fd``: the Fréchet distance between
            ``len(x)`` samples and the evaluated images.
        max_train_examples: cap on the train codes used by k-NN / probe.
        seed: seed of the evaluation's own draws (denoising corruption, prior
            samples, samples for the Fréchet distance); the ELBO and IWAE
            estimates draw from the model's ``seed_generator`` and vary within
            their Monte Carlo noise between runs.
        verbose: print progress and the final table.
    """
    started = time.time()
    _check_model(model)
    if isinstance(data, str):
        x, y = _load_split(data, split, source, data_dir, binarize, num_examples)
        named = dataset_name = data
    else:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise TypeError(f"`data` must be a dataset name such as 'mnist' or a pair (x, y) of test arrays (y may be None); "
                            f"got {type(data).__name__}.")
        x, y = data
        x = np.asarray(x, "float32")
        if y is not None and len(np.asarray(y)) != len(x):
            raise ValueError(f"`data` holds {len(x)} images but {len(np.asarray(y))} labels.")
        if num_examples is not None:
            x = x[:num_examples]
            y = None if y is None else np.asarray(y)[:num_examples]
        named = dataset
        dataset_name = dataset or "arrays"
    results = {"dataset": dataset_name, "split": split, "num_examples": int(len(x)),
               "binarize": binarize or "none"}
    if verbose:
        print(f"evaluating {type(model).__name__} on {dataset_name}/{split}: {len(x)} images", flush=True)

    labels = _labelled(model, y)  # the labels a conditional model's calls take, else None
    results.update(reconstruction_metrics(model, x, batch_size, labels=labels))
    codes = _map_given(model.encode, x, labels, batch_size)

    if (knn or probe) and y is not None:
        if train_data is None and named is not None:
            train_data = _load_split(named, "train", source, data_dir, binarize, max_train_examples)
        if train_data is not None:
            x_tr, y_tr = train_data
            x_tr = np.asarray(x_tr, "float32")[:max_train_examples]
            y_tr = np.asarray(y_tr)[:max_train_examples]
            # Codes that are not flat vectors (a VQ-VAE's grid of code indices) are compared through the
            # model's own flat features of them (``code_features``: the VQ-VAE's flattened code vectors).
            train_codes = _map_given(model.code_features, x_tr, None if labels is None else y_tr, batch_size)
            test_codes = codes if model.has_flat_codes else _map_given(model.code_features, x, labels, batch_size)
            if knn:
                results["knn_accuracy"] = knn_accuracy(train_codes, y_tr, test_codes, y, k=5)
            if probe:
                results["linear_probe_accuracy"] = linear_probe_accuracy(train_codes, y_tr, test_codes, y)

    if model.has_likelihood:
        results["negative_elbo_nats"] = float(-np.mean(_map_given(model.elbo, x, labels, batch_size)))
    if model.has_posterior:
        results["active_units"] = active_units(codes)
    if model.has_likelihood and iwae_samples:
        results["iwae_nll_nats"] = iwae_nll(model, x, iwae_samples, verbose=verbose, labels=labels)
        results["iwae_samples"] = int(iwae_samples)
    if model.has_likelihood and model.discrete_likelihood:
        results.update(bits_per_dim(results, model.image_shape))
    results.update(model.evaluation_metrics(x, codes, batch_size=batch_size, seed=seed))
    if fid and model.is_generative and named is not None:
        from keraszoo import feature_classifier as fc

        if fc.asset_dir(named).exists():
            results["sample_fd"] = sample_frechet_distance(model, x, dataset=named, seed=seed)
    results["seconds"] = round(time.time() - started, 1)
    if verbose:
        print(format_table(results), flush=True)
    return results


#: the nats metrics that :func:`bits_per_dim` converts, and the names of their bits/dim.
BITS_PER_DIM_OF = {"negative_elbo_nats": "negative_elbo_bits_per_dim", "iwae_nll_nats": "iwae_bits_per_dim"}


def bits_per_dim(results, image_shape):
    """The nats per image in ``results`` as bits per dimension, ``nats / (pixels * ln 2)``.

    Defined for a likelihood that is a probability of the discrete image (the VAE's discretized
    logistic), where it is the literature's unit for CIFAR-10 and ImageNet.
    """
    dims = int(np.prod(image_shape)) * math.log(2.0)
    return {bits: float(results[nats]) / dims for nats, bits in BITS_PER_DIM_OF.items() if nats in results}


def format_table(results):
    """A two-column plain-text table of ``results``."""
    rows = [(key, format_number(value)) for key, value in results.items()]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    return "\n".join([line] + [f"{k.ljust(width)}  {v}" for k, v in rows] + [line])


def sample_frechet_distance(model, x_reference, dataset="mnist", num_samples=None, seed=0, batch_size=500):
    """Fréchet distance between ``model.sample`` images and ``x_reference`` in the
    feature space of keraszoo's bundled classifier for ``dataset`` (see
    ``keraszoo.feature_classifier``). Lower is better; 0 = same feature statistics.
    """
    from keraszoo import feature_classifier as fc

    extractor, _ = fc.load_feature_extractor(dataset)
    n = int(num_samples or len(x_reference))
    labels = model.cycled_labels(n)  # a conditional model samples every class equally often
    samples = []
    for i in range(0, n, batch_size):
        m = min(batch_size, n - i)
        samples.append(_np(model.sample(m, seed=seed + i, **model.label_kwargs(None if labels is None else labels[i:i + m]))))
    samples = np.concatenate(samples, axis=0)
    return fc.frechet_distance(fc.features(extractor, samples), fc.features(extractor, x_reference))
