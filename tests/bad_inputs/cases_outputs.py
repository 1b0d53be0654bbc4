"""Output folders that hold something a user owns: ``train``, ``finetune``, ``report`` and ``save_pretrained``
refuse to write there (:mod:`keraszoo.output_folder`).

Decisions:

* a folder is written only when it is empty, new, or keraszoo's own for the same job (the same
  ``train`` recipe, the report of the same results: a resume), or with ``--overwrite``
  (``overwrite=True``); anything else is refused before any work, naming the files in the way
  (exit 1), and the folder is left exactly as it was (no lock file, no marker);
* a folder that holds another recipe's run (another job's output) says so;
* ``-o``/``--out`` naming a file says it is a file (not ``[Errno 17] File exists``).
"""

from __future__ import annotations

import json

import numpy as np

from keraszoo.output_folder import FolderNotEmptyError
from keraszoo.output_folder import OutputFolderError
from tests.bad_inputs import shared
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli

TRAIN = ["train", "--model", "ae", "--hidden-dims", "8", "--latent-dim", "2", "--epochs", "1", "--verbose", "0",
         "--no-eval", "--limit", "16"]


def _users_folder(tmp):
    """``in/mine``: a folder of the user's, with a README.md and a notes file."""
    folder = inputs(tmp) / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("# mine\n")
    (folder / "notes.txt").write_text("keep me\n")
    return folder


def _other_run(tmp):
    """``in/run``: what an earlier ``keraszoo train`` of another recipe left (its marker and files)."""
    folder = inputs(tmp) / "run"
    folder.mkdir()
    for name in ("README.md", "config.json", "model.weights.h5", "metadata.json", "training_log.csv"):
        (folder / name).write_text("{}\n")
    (folder / ".keraszoo.json").write_text(json.dumps({"job": "train", "key": "0123456789abcdef",
                                                       "keraszoo_version": "0", "created": "2026-01-01T00:00:00"}))
    return folder


def _a_file(tmp):
    path = inputs(tmp) / "report.md"
    path.write_text("# a file\n")
    return path


def _images(tmp):
    np.save(inputs(tmp) / "images.npy", np.full((4, *shared.SHAPE), 0.5, dtype="float32"))


def _users_folder_and_images(tmp):
    _users_folder(tmp)
    _images(tmp)


def _save_pretrained(name):
    def run(tmp):
        import keraszoo

        return keraszoo.save_pretrained(shared.ae(), inputs(tmp) / name, keras_archive=False)

    return run


def case(id, area, description, run, error, match, prepare):
    return Case(id=id, area=area, description=description, run=run, error=error, match=match, prepare=prepare)


CASES = [
    case("outputs-train-into-a-users-folder", "training", "keraszoo train --out <a folder holding the user's README.md>",
         lambda tmp: run_cli([*TRAIN, "--out", inputs(tmp) / "mine"]), ErrorExit,
         r"--out .*mine is not empty and keraszoo did not write it: README\.md, notes\.txt would be in the way; "
         r"choose an empty or new folder, or pass --overwrite", _users_folder),
    case("outputs-train-over-another-recipe", "training",
         "keraszoo train --model ae --out <the folder of a train run of another recipe>",
         lambda tmp: run_cli([*TRAIN, "--out", inputs(tmp) / "run"]), ErrorExit,
         r"--out .*run holds a keraszoo train run of another recipe \(README\.md, .*\); .*pass --overwrite",
         _other_run),
    case("outputs-finetune-into-a-users-folder", "training",
         "keraszoo finetune MODEL --data images.npy --out <a folder holding the user's README.md>",
         lambda tmp: run_cli(["finetune", shared.ae_folder(), "--data", inputs(tmp) / "images.npy", "--epochs", "1",
                              "--verbose", "0", "--out", inputs(tmp) / "mine"]), ErrorExit,
         r"--out .*mine is not empty and keraszoo did not write it: README\.md, notes\.txt would be in the way",
         _users_folder_and_images),
    case("outputs-report-into-a-users-folder", "CLI", "keraszoo report DIR -o <a folder holding the user's README.md>",
         lambda tmp: run_cli(["report", inputs(tmp), "-o", inputs(tmp) / "mine"]), ErrorExit,
         r"-o .*mine is not empty and keraszoo did not write it: README\.md, notes\.txt would be in the way",
         _users_folder),
    case("outputs-report-o-is-a-file", "CLI", "keraszoo report DIR -o report.md (an existing file)",
         lambda tmp: run_cli(["report", inputs(tmp), "-o", inputs(tmp) / "report.md"]), ErrorExit,
         r"-o .*report\.md is a file; give a folder", _a_file),
    case("outputs-save-pretrained-into-a-users-folder", "weights and hub",
         "keraszoo.save_pretrained(model, <a folder holding the user's README.md>)",
         _save_pretrained("mine"), FolderNotEmptyError,
         r"mine is not empty and keraszoo did not write it: README\.md, notes\.txt would be in the way; .*"
         r"pass overwrite=True", _users_folder),
    case("outputs-save-pretrained-into-a-train-run", "weights and hub",
         "keraszoo.save_pretrained(model, <the folder of a keraszoo train run>)",
         _save_pretrained("run"),
         OutputFolderError, r"run holds a keraszoo train run, not a keraszoo\.save_pretrained model", _other_run),
]
