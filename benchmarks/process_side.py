"""One side of a comparison in a process of its own, trained an epoch at a time on the parent's word.

    python benchmarks/process_side.py SIDE --images FILE.npy --batch-size B --latent-dim D

PyTorch and TensorFlow crash when both are loaded into one process (a segfault when
pythae's side trains next to keraszoo's), so the pythae comparison runs each side in its
own process -- and the pythae side under any interpreter that has ``torch`` and ``pythae``
(``--pythae-python``, e.g. a virtual environment of their own, without TensorFlow). The
parent (:class:`ProcessSide`, a :class:`benchmarks.figures.Side`) still makes the sides
take turns, one epoch each (A, B, A, B, ...), after a warm-up epoch each, and a ratio is
the ratio of the medians, as for every other case: a slow spell of the host hits both.

The protocol, one line each: the child prints ``READY`` once its side is built; each
``epoch`` line it reads trains one epoch and prints ``SECONDS <s>``; end of input ends it.
``SIDE`` is ``keraszoo_vae`` (keraszoo's dense VAE with pythae's default networks,
784-512-D, ``fit``) or ``pythae_vae`` (pythae's ``VAE``, default MLP networks,
Bernoulli decoder, trained by the loop its trainer runs per batch). This file imports
neither framework at its top, so that either interpreter can run it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SIDES = ("keraszoo_vae", "pythae_vae")


# --------------------------------------------------------------------------- the parent's end
class ProcessSide:
    """A :class:`benchmarks.figures.Side` whose epochs run in a child process (started here, ended by :meth:`close`)."""

    def __init__(self, name, side, images_file, images_per_epoch, batch_size, latent_dim, python=None, timeout=600):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.name = name
        self.images_per_epoch = images_per_epoch
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [python or sys.executable, str(pathlib.Path(__file__).resolve()), side, "--images", str(images_file),
             "--batch-size", str(batch_size), "--latent-dim", str(latent_dim)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._expect("READY")

    def _expect(self, head):
        line = self.proc.stdout.readline()
        if not line.startswith(head):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=60)
            raise RuntimeError(f"the {self.name} process ({' '.join(self.proc.args[1:3])}) answered {line.strip()!r} "
                               f"instead of {head}; its stderr ends with:\n{err[-2000:]}")
        return line

    def run_epoch(self) -> float:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return float(self._expect("SECONDS").split()[1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def missing(python) -> str | None:
    """``None`` when ``python`` imports ``torch`` and ``pythae``, else why not (the case is then skipped)."""
    try:
        done = subprocess.run([python, "-c", "import torch, pythae"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{python}: {err}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"{python}: {last}"
    return None


# --------------------------------------------------------------------------- the child's end
def keraszoo_vae(x, batch_size, latent_dim):
    """keraszoo's dense VAE with pythae's default networks (784-512-D, Bernoulli decoder), ``fit`` one epoch a call."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.figures import keras_side
    from keraszoo.models import VAE

    model = VAE(input_shape=tuple(x.shape[1:]), latent_dim=latent_dim, hidden_dims=(512,), seed=0)
    model.compile()
    return keras_side("train_mlp_vae_keraszoo", model, x, batch_size).run_epoch


def pythae_vae(x, batch_size, latent_dim):
    """pythae's ``VAE`` (default MLP networks 784-512-D, Bernoulli decoder), Adam 1e-3.

    Trained by the loop pythae's own trainer runs per batch (``model(inputs).loss``,
    backward, step) without its logging and checkpointing, over shuffled index
    batches of a tensor already in memory.
    """
    import numpy as np
    import torch
    from pythae.models import VAE
    from pythae.models import VAEConfig

    torch.manual_seed(0)
    model = VAE(model_config=VAEConfig(input_dim=(1,) + tuple(x.shape[1:3]), latent_dim=latent_dim,
                                       reconstruction_loss="bce"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))

    def run_epoch():
        model.train()
        start = time.perf_counter()
        for index in torch.randperm(len(data)).split(batch_size):
            output = model({"data": data[index]})
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    return run_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--images", required=True, help=".npy file of float32 (N, H, W, C) images in [0, 1]")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=16)
    args = parser.parse_args(argv)
    import numpy as np

    x = np.load(args.images)
    run_epoch = {"keraszoo_vae": keraszoo_vae, "pythae_vae": pythae_vae}[args.side](x, args.batch_size, args.latent_dim)
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() == "epoch":
            print(f"SECONDS {run_epoch():.9f}", flush=True)


if __name__ == "__main__":
    main()
