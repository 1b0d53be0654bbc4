"""Nothing a user owns is overwritten or lost: the one rule for keraszoo's output folders
(:mod:`keraszoo.output_folder`), and each command that writes one.

A folder is written when it is empty, keraszoo's own for the same job (a resume) or given with
``--overwrite``; anything else is refused naming what is in the way, and a folder being written
is locked against a second writer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from keraszoo import output_folder
from keraszoo.output_folder import FolderLockedError
from keraszoo.output_folder import FolderNotEmptyError
from keraszoo.output_folder import OutputFolderError
from tests.training.helpers import REPO_ROOT
from tests.training.helpers import base_args

# --------------------------------------------------------------------------- helpers


def _tree(folder):
    """``{relative path: bytes}`` of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _users_folder(path):
    path.mkdir(parents=True)
    (path / "README.md").write_text("# mine\n")
    (path / "notes.txt").write_text("keep me\n")
    return path


#: Holds a claim in another process until its stdin closes; prints "held" once it holds it.
_HOLDER = textwrap.dedent("""
    import sys
    from keraszoo import output_folder
    with output_folder.claim(sys.argv[1], sys.argv[2], key=sys.argv[3] if len(sys.argv) > 3 else None):
        print("held", flush=True)
        sys.stdin.read()
""")


class Holder:
    """Another process holding ``path`` for ``job``: ``with Holder(path, "train") as pid: ...``."""

    def __init__(self, path, job, key=None):
        args = [sys.executable, "-c", _HOLDER, str(path), job] + ([key] if key else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)

    def __enter__(self):
        assert self.proc.stdout.readline().strip() == "held"
        return self.proc.pid

    def __exit__(self, *exc):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


# --------------------------------------------------------------------------- the rule


def test_a_new_folder_is_created_marked_and_locked_while_held(tmp_path):
    target = tmp_path / "a" / "b"
    with output_folder.claim(target, "train", key="k1") as folder:
        assert folder == target and folder.is_dir()
        assert sorted(os.listdir(folder)) == [".keraszoo.json", ".keraszoo.lock"]
        holder = json.loads((folder / ".keraszoo.lock").read_text())
        assert holder["job"] == "train" and holder["pid"] == os.getpid() and holder["host"] and holder["since"]
    assert os.listdir(target) == [".keraszoo.json"]  # the lock file goes with the job
    marker = output_folder.read_marker(target)
    assert marker["job"] == "train" and marker["key"] == "k1" and marker["keraszoo_version"] and marker["created"]
    assert output_folder.is_claimed_by(target, "train") and output_folder.is_claimed_by(target, "train", "k1")
    assert not output_folder.is_claimed_by(target, "train", "k2") and not output_folder.is_claimed_by(target, "report")


def test_an_empty_folder_is_fine_and_the_same_job_resumes(tmp_path):
    with output_folder.claim(tmp_path, "train", key="k1"):
        (tmp_path / "model.weights.h5").write_bytes(b"weights")
    created = output_folder.read_marker(tmp_path)["created"]
    assert output_folder.check(tmp_path, "train", key="k1") is True
    with output_folder.claim(tmp_path, "train", key="k1"):  # the same job and key: a resume
        pass
    with output_folder.claim(tmp_path, "train"):  # no key: any folder of the job
        pass
    assert output_folder.read_marker(tmp_path)["created"] == created
    assert (tmp_path / "model.weights.h5").read_bytes() == b"weights"


def test_another_key_or_job_is_refused_and_says_whose_folder_it_is(tmp_path):
    with output_folder.claim(tmp_path, "train", key="k1"):
        (tmp_path / "config.json").write_text("{}")
    before = _tree(tmp_path)
    with pytest.raises(FolderNotEmptyError, match=r"--out .* holds a keraszoo train run of another recipe "
                                                  r"\(config\.json\); choose an empty or new folder, or pass "
                                                  r"--overwrite to write over them\."):
        output_folder.check(tmp_path, "train", key="k2")
    with pytest.raises(FolderNotEmptyError, match="holds a keraszoo train run of another recipe"):
        with output_folder.claim(tmp_path, "train", key="k2"):
            pytest.fail("the block must not run")
    with pytest.raises(FolderNotEmptyError, match=r"-o .* holds a keraszoo train run, not a keraszoo report"):
        with output_folder.claim(tmp_path, "report", key="results", flag="-o"):
            pass
    assert _tree(tmp_path) == before


def test_a_users_files_are_named_and_never_touched(tmp_path):
    folder = _users_folder(tmp_path / "mine")
    for i in range(11):
        (folder / f"f{i:02d}.txt").write_text(str(i))
    (folder / "sub").mkdir()
    before = _tree(folder)
    with pytest.raises(FolderNotEmptyError) as err:
        with output_folder.claim(folder, "train", key="k"):
            pass
    message = str(err.value)
    assert message.startswith(f"--out {folder} is not empty and keraszoo did not write it: README.md, f00.txt, ")
    assert "and 4 more would be in the way" in message  # 14 entries: 10 named
    assert message.endswith("choose an empty or new folder, or pass --overwrite to write over them.")
    assert _tree(folder) == before and sorted(os.listdir(folder)) == sorted(before) + ["sub"]  # no lock, no marker
    with pytest.raises(FolderNotEmptyError, match=r"pass overwrite=True"):  # a Python argument: flag=None
        output_folder.check(folder, "save_pretrained", flag=None)


def test_overwrite_writes_into_any_folder_and_ignored_names_are_not_in_the_way(tmp_path):
    folder = _users_folder(tmp_path / "mine")
    with output_folder.claim(folder, "train", key="k", overwrite=True):
        pass
    assert output_folder.is_claimed_by(folder, "train", "k")
    assert (folder / "README.md").read_text() == "# mine\n"  # a claim itself removes nothing
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "samples.png").write_bytes(b"png")
    with output_folder.claim(pictures, "save_pretrained", ignore=("samples.png",)):
        pass


def test_a_file_is_refused(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("x")
    with pytest.raises(OutputFolderError, match=r"^--out .*model\.txt is a file; give a folder \(it is created"):
        with output_folder.claim(path, "train"):
            pass
    with pytest.raises(OutputFolderError, match=r"model\.txt exists and is not a directory"):
        output_folder.check(path, "save_pretrained", flag=None)
    assert path.read_text() == "x"


def test_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path):
    with Holder(tmp_path / "run", "train", "k") as pid:
        expected = rf"--out .*run is in use: keraszoo train \(pid {pid} on .+, since .+\) is writing to it"
        with pytest.raises(FolderLockedError, match=expected):
            output_folder.check(tmp_path / "run", "train", key="k")  # even for the same job: one writer at a time
        with pytest.raises(FolderLockedError, match=expected):
            with output_folder.claim(tmp_path / "run", "train", key="k"):
                pass
    with output_folder.claim(tmp_path / "run", "train", key="k"):  # released with the holder
        pass
    assert os.listdir(tmp_path / "run") == [".keraszoo.json"]


def test_the_lock_is_released_after_an_exception(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with output_folder.claim(folder, "train", key="k"):
            (folder / "training_log.csv").write_text("epoch\n")
            raise RuntimeError("killed")
    assert not (folder / ".keraszoo.lock").exists()
    with Holder(folder, "train", "k"):  # another process takes it at once
        pass
    with pytest.raises(RuntimeError):  # a folder the failed claim created, left empty, is removed again
        with output_folder.claim(tmp_path / "new" / "deeper", "train"):
            raise RuntimeError("failed before writing")
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_claims_are_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path):
    with output_folder.claim(tmp_path, "train", key="k"):
        with output_folder.claim(tmp_path, "save_pretrained", flag=None):  # the caller's folder: its rule
            (tmp_path / "config.json").write_text("{}")
        errors = []

        def other():
            try:
                with output_folder.claim(tmp_path, "train", key="k"):
                    pass
            except FolderLockedError as err:
                errors.append(str(err))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert errors and "another thread of this process" in errors[0]
    assert output_folder.read_marker(tmp_path)["job"] == "train"


# --------------------------------------------------------------------------- the commands

#: the commands' output folders are refused before any TensorFlow work: no data, no model needed.


def test_train_refuses_a_users_folder_and_overwrite_writes_into_it(tmp_path, tiny_mnist_dir):
    from keraszoo.cli import main

    folder = _users_folder(tmp_path / "p")
    before = _tree(folder)
    args = base_args(tiny_mnist_dir, **{"--epochs": "1", "--limit": "64"})
    assert main(["train", *args, "--out", str(folder)]) == 1
    assert _tree(folder) == before and sorted(os.listdir(folder)) == ["README.md", "notes.txt"]
    assert main(["train", *args, "--out", str(folder), "--overwrite"]) == 0
    assert (folder / "notes.txt").read_text() == "keep me\n"  # what train does not write stays
    assert output_folder.is_claimed_by(folder, "train")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert "--overwrite" not in metadata["recipe"]["argv"]  # where to write is not part of the recipe


def test_train_resumes_its_own_folder_and_refuses_another_recipe(tmp_path, tiny_mnist_dir, capsys):
    import keraszoo
    from keraszoo.cli import main

    out = tmp_path / "run"
    args = base_args(tiny_mnist_dir, **{"--epochs": "1", "--limit": "64"})
    assert main(["train", *args, "--out", str(out)]) == 0
    saved = _tree(out)
    vae = base_args(tiny_mnist_dir, **{"--model": "vae", "--epochs": "1", "--limit": "64"})
    capsys.readouterr()
    assert main(["train", *vae, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--out {out} holds a keraszoo train run of another recipe" in err and "pass --overwrite" in err
    assert _tree(out) == saved and keraszoo.load(out).variant == "ae"  # the AE is still there
    assert main(["train", *args, "--out", str(out)]) == 0  # the same command: its own folder
    assert keraszoo.load(out).variant == "ae"


def test_train_refuses_a_folder_in_use_before_reading_data(tmp_path, capsys):
    from keraszoo.cli import main

    with Holder(tmp_path / "run", "train", "someone") as pid:
        code = main(["train", "--model", "ae", "--dataset", "mnist", "--data-source", "npz", "--data-dir",
                     str(tmp_path / "no-data-here"), "--out", str(tmp_path / "run")])
    assert code == 1  # refused before the (missing) data was looked for
    assert f"--out {tmp_path / 'run'} is in use: keraszoo train (pid {pid} on " in capsys.readouterr().err
    assert output_folder.is_claimed_by(tmp_path / "run", "train", "someone")


def test_finetune_refuses_a_users_folder(tmp_path, tiny_saved_ae, capsys):
    from keraszoo.cli import main

    folder = _users_folder(tmp_path / "ft")
    np.save(tmp_path / "images.npy", np.full((8, 28, 28, 1), 0.5, dtype="float32"))
    before = _tree(folder)
    assert main(["finetune", str(tiny_saved_ae), "--data", str(tmp_path / "images.npy"), "--epochs", "1",
                 "--verbose", "0", "--out", str(folder)]) == 1
    assert "README.md, notes.txt would be in the way" in capsys.readouterr().err
    assert _tree(folder) == before


def test_report_refuses_a_users_folder_another_results_folder_and_a_file(tmp_path, capsys):
    from keraszoo.cli import main

    folder = _users_folder(tmp_path / "report")
    assert main(["report", str(tmp_path / "results"), "-o", str(folder)]) == 1
    assert "README.md, notes.txt would be in the way" in capsys.readouterr().err
    assert (folder / "README.md").read_text() == "# mine\n"

    other = tmp_path / "other_report"
    with output_folder.claim(other, "report", key=os.path.realpath(tmp_path / "elsewhere")):
        (other / "README.md").write_text("# the report of elsewhere\n")
    assert main(["report", str(tmp_path / "results"), "-o", str(other)]) == 1
    assert "holds a keraszoo report of another results folder" in capsys.readouterr().err

    (tmp_path / "report.md").write_text("x")
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "report.md")]) == 1
    err = capsys.readouterr().err
    assert f"-o {tmp_path / 'report.md'} is a file; give a folder" in err and "Errno" not in err

    # --overwrite passes the rule (the report then fails on its missing results.jsonl, leaving no new folder)
    assert main(["report", str(tmp_path / "results"), "-o", str(tmp_path / "new"), "--overwrite"]) == 1
    assert "results.jsonl" in capsys.readouterr().err and not (tmp_path / "new").exists()


def test_export_takes_overwrite_as_its_force_flag():
    from keraszoo.cli import build_parser

    args = build_parser().parse_args(["export", "vae_mnist", "-o", "m", "--overwrite"])
    assert args.force is True


def test_save_pretrained_refuses_foreign_files_and_keeps_card_pictures(tmp_path, tiny_ae_model):
    import keraszoo

    folder = _users_folder(tmp_path / "mine")
    before = _tree(folder)
    with pytest.raises(FolderNotEmptyError, match="README.md, notes.txt would be in the way.*overwrite=True"):
        keraszoo.save_pretrained(tiny_ae_model, folder, keras_archive=False)
    assert _tree(folder) == before
    keraszoo.save_pretrained(tiny_ae_model, folder, keras_archive=False, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me\n" and keraszoo.load(folder).variant == "ae"

    pictures = tmp_path / "pictures"  # the model card embeds the pictures already there
    pictures.mkdir()
    (pictures / "samples.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    keraszoo.save_pretrained(tiny_ae_model, pictures, keras_archive=False)
    keraszoo.save_pretrained(tiny_ae_model, pictures, keras_archive=False)  # again: its own folder
    assert "samples.png" in json.loads((pictures / "metadata.json").read_text())["files"]

    run = tmp_path / "run"
    with output_folder.claim(run, "train", key="k"):
        (run / "training_log.csv").write_text("epoch\n")
    with pytest.raises(FolderNotEmptyError, match="holds a keraszoo train run, not a keraszoo.save_pretrained"):
        keraszoo.save_pretrained(tiny_ae_model, run)


def test_a_folder_where_a_recorded_file_should_be_is_named(tmp_path, tiny_ae_model):
    import keraszoo

    folder = keraszoo.save_pretrained(tiny_ae_model, tmp_path / "m", keras_archive=False)
    (folder / "README.md").unlink()
    (folder / "README.md").mkdir()
    with pytest.raises(IsADirectoryError, match=r"README\.md is a folder, but .*metadata\.json records a file"):
        keraszoo.load(folder)


@pytest.mark.slow
def test_two_concurrent_trains_into_one_folder_one_writes_the_other_is_refused(tmp_path, tiny_mnist_dir):
    import keraszoo

    out = tmp_path / "run"
    commands = {model: [sys.executable, "-m", "keraszoo", "train", *base_args(
        tiny_mnist_dir, **{"--model": model, "--epochs": "3", "--limit": "128"}), "--out", str(out)]
        for model in ("ae", "vae")}
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = {model: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=REPO_ROOT) for model, cmd in commands.items()}
    results = {model: (p.wait(timeout=600), *p.communicate()) for model, p in procs.items()}
    winners = [model for model, (code, _, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    (loser,) = set(results) - set(winners)
    code, stdout, stderr = results[loser]
    assert code == 1 and "Model written" not in stdout
    assert (f"--out {out} is in use: keraszoo train (pid" in stderr
            or f"--out {out} holds a keraszoo train run of another recipe" in stderr), stderr
    assert "free some space" not in stderr
    assert keraszoo.load(out).variant == winners[0]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_ae_model():
    from keraszoo.models import AutoEncoder

    return AutoEncoder(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(8,), seed=0)


@pytest.fixture(scope="module")
def tiny_saved_ae(tmp_path_factory, tiny_ae_model):
    import keraszoo

    return keraszoo.save_pretrained(tiny_ae_model, tmp_path_factory.mktemp("saved") / "ae", keras_archive=False)
