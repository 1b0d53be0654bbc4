"""Train the small classifier whose features define keraszoo's Fréchet distance.

    KERASZOO_DATA_DIR=../shared/data python training/train_feature_classifier.py --dataset mnist

Writes ``keraszoo/assets/feature_classifier_<dataset>/`` (``model.weights.h5`` and
``metadata.json`` with the command, seed, epochs and the measured test accuracy).
"""

import argparse
import json
import pathlib
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist", "cifar10"])
    parser.add_argument("--data-source", default="npz", choices=["npz", "tfds"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default: keraszoo/assets/feature_classifier_<dataset>")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from keraszoo import data
    from keraszoo import feature_classifier as fc

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = data.load_arrays(args.dataset, "train", source=args.data_source, data_dir=args.data_dir)
    x_test, y_test = data.load_arrays(args.dataset, "test", source=args.data_source, data_dir=args.data_dir)
    perm = np.random.default_rng(args.seed).permutation(len(x_train))  # the run seed's order (fit shuffles too)
    x_train, y_train = x_train[perm], y_train[perm]
    model = fc.build_classifier(x_train.shape[1:])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    started = time.time()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    wall = time.time() - started
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    out = pathlib.Path(args.out) if args.out else fc.asset_dir(args.dataset)
    out.mkdir(parents=True, exist_ok=True)
    # An uncompiled twin holds the weights without the optimizer's slots (3x smaller).
    twin = fc.build_classifier(x_train.shape[1:])
    twin.set_weights(model.get_weights())
    twin.save_weights(out / "model.weights.h5")
    info = {
        "dataset": args.dataset,
        "image_shape": list(x_train.shape[1:]),
        "feature_layer": fc.FEATURE_LAYER,
        "feature_dim": 128,
        "test_accuracy": round(float(accuracy), 4),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "wall_time_s": round(wall, 1),
        "command": "python training/train_feature_classifier.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])),
        "keras_version": keras.__version__,
    }
    (out / "metadata.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
