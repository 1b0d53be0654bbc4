"""keraszoo: a Keras 3 model zoo of autoencoders with pretrained weights."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "keraszoo" / "version.py").read_text()
).group(1)

setup(
    name="keraszoo",
    version=VERSION,
    description="Autoencoders for Keras 3 (AE, DAE, SAE, CAE, VAE/beta-VAE, "
    "hierarchical VAE, AAE) with pretrained, hash-verified weights.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["keraszoo", "keraszoo.*"]),
    # The zoo's own weights, the manifest and the credited MNIST sample ship
    # inside the package so that loading works offline.
    include_package_data=True,
    package_data={
        "keraszoo": [
            "weights_manifest.json",
            "assets/*",
            "assets/*/*",
            "pretrained/*/*",
        ]
    },
    install_requires=[
        # The full `tensorflow` package (CPU everywhere, GPU with the `gpu` extra's
        # CUDA libraries), never `tensorflow-cpu`: the two install side by side
        # into one `tensorflow` module and conflict.
        "tensorflow>=2.16",
        "keras>=3.6",  # hf:// loading (keras.saving with the Hub) needs 3.6
        "tensorflow-datasets>=4.9",
        "huggingface-hub>=2.4,<3",
        "numpy>=1.24",
        "pillow>=9",
        "h5py>=3.8",
    ],
    extras_require={
        # pip install "keraszoo[gpu]": TensorFlow with its CUDA libraries (Linux, NVIDIA GPUs).
        "gpu": ["tensorflow[and-cuda]>=2.16; sys_platform == 'linux'"],
        # jax: the test-suite checks that the models also train on the JAX backend.
        # scikit-learn: the theory tests set PCA beside the linear autoencoder.
        # ray: the tests of `keraszoo experiment --engine ray` (a local Ray instance; ~18 s and 285 MB to install).
        "dev": ["pytest>=7", "matplotlib>=3.7", "jax[cpu]>=0.4.30", "ruff>=0.6", "hypothesis>=6", "scikit-learn>=1.3",
                "ray>=2.10"],
        "plots": ["matplotlib>=3.7"],
        # keraszoo experiment / report: PCA and the linear AE beside the autoencoders, the report's figures.
        "experiments": ["scikit-learn>=1.3", "matplotlib>=3.7"],
        # keraszoo.anomaly: AUROC / AP and the one-class baselines (Isolation Forest, OC-SVM, KDE).
        "anomaly": ["scikit-learn>=1.3"],
        "tensorboard": ["tensorboard"],
        "export": ["tf2onnx>=1.16", "onnxruntime>=1.17", "ai-edge-litert"],  # keraszoo export --format onnx|litert
        # keraszoo experiment --engine ray: each run of a sweep a Ray task (never a core dependency).
        "ray": ["ray>=2.10"],
    },
    entry_points={"console_scripts": ["keraszoo=keraszoo.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
