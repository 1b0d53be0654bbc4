"""A study's spec is checked whole before its first run, and a sweep folder holds one spec (issue 24).

No training here: the sweep tests replace ``execute_run`` with a stand-in that writes a complete run folder.
"""

import json
import pathlib

import pytest

from keraszoo.cli import main
from keraszoo.experiments import Study
from keraszoo.experiments import StudyError
from keraszoo.experiments import plan_runs
from keraszoo.experiments import run_study
from keraszoo.experiments import runner

BASE = {"name": "t", "variants": ["vae"], "fixed": {"hidden_dims": [8]}, "grid": {"latent_dim": [2]}}
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("change, message", [
    ({"grid": {"latent_dim": ["8"]}}, r"grid\.latent_dim\[0\]: expected a positive integer <= 1048576, got '8' \(a string\)"),
    ({"grid": {"latent_dim": [True]}}, r"grid\.latent_dim\[0\]: expected a positive integer .*got True \(a boolean\)"),
    ({"grid": {"latent_dim": [8.0]}}, r"grid\.latent_dim\[0\]: expected a positive integer .*got 8\.0 \(a float\)"),
    ({"grid": {"latent_dim": [2, 10**12]}}, r"grid\.latent_dim\[1\]: expected a positive integer <= 1048576, got 10{12}"),
    ({"grid": {"latent_dim": [0]}}, r"grid\.latent_dim\[0\]: expected a positive integer"),
    ({"grid": {"beta": [1.0, NAN]}}, r"grid\.beta\[1\]: expected a finite number, got nan \(not a number\)"),
    ({"grid": {"beta": [INF]}}, r"grid\.beta\[0\]: expected a finite number, got inf \(infinite\)"),
    ({"grid": {"beta": ["1"]}}, r"grid\.beta\[0\]: expected a finite number, got '1' \(a string\)"),
    ({"grid": {"reconstruction_loss": ["bcee"]}}, r"grid\.reconstruction_loss\[0\]: expected one of .*Did you mean 'bce'"),
    ({"grid": {"hidden_dims": [[8, 0]]}}, r"grid\.hidden_dims\[0\]: expected a list of positive integers"),
    ({"grid": {"decoder_std": [NAN]}}, r"grid\.decoder_std\[0\]: expected finite numbers, got nan"),
    ({"grid": [{"latent_dim": [2]}, {"latent_dim": [3], "beta": [NAN]}]}, r"grid\[1\]\.beta\[0\]: expected a finite"),
    ({"fixed": {"hidden_dims": [8], "lr": NAN}}, r"fixed\.lr: --lr must be a finite number > 0"),
    ({"fixed": {"hidden_dims": "8"}}, r"fixed\.hidden_dims: expected a list of positive integers"),
    ({"fixed": {"hidden_dims": [8], "seed": "abc"}}, r"fixed\.seed: --seed must be an integer in \[0, 2\*\*32\)"),
    ({"fixed": {"hidden_dims": [8], "seed": 2**64}}, r"fixed\.seed: --seed must be an integer in \[0, 2\*\*32\)"),
    ({"fixed": {"hidden_dims": [8], "seed": -1}}, r"fixed\.seed: --seed must be an integer in \[0, 2\*\*32\)"),
    ({"grid": {"drop_remainder": [NAN]}}, r"grid\.drop_remainder\[0\]: --drop-remainder must be true or false"),
    ({"grid": {"binarize": ["dynamc"]}}, r"grid\.binarize\[0\]: --binarize must be one of none, dynamic"),
    ({"budgets": {"smoke": {"grid": {"latent_dim": [-3]}}}}, r"budgets\.smoke\.grid\.latent_dim\[0\]: expected a positive"),
    ({"budgets": {"default": {"grid": {"beta": [NAN]}}}}, r"budgets\.default\.grid\.beta\[0\]"),  # any budget's grid
])
def test_every_value_of_the_spec_is_checked_before_planning(change, message):
    study = Study.from_dict({**BASE, **change})
    with pytest.raises(StudyError, match=r"Study 't': " + message):
        plan_runs(study, "mnist", "smoke")


@pytest.mark.parametrize("probes, message", [
    ({"denoising_psnr": {"levels": {"gausian": [0.1]}}},
     r"denoising_psnr\.levels: unknown noise type 'gausian'\. Did you mean 'gaussian'\?"),
    ({"denoising_psnr": {"levels": {"masking": [1.5]}}},
     r"denoising_psnr\.levels\.masking\[0\]: expected a probability in \[0, 1\], got 1\.5"),
    ({"denoising_psnr": {"levels": {"gaussian": []}}}, r"denoising_psnr\.levels\.gaussian: expected a non-empty list"),
    ({"denoising_psnr": {"levels": [0.1]}}, r"denoising_psnr\.levels: expected an object \{noise type: \[levels\]\}"),
    ({"code_shift": {"sigma": NAN}}, r"code_shift\.sigma: expected a finite number >= 0, got nan \(not a number\)"),
    ({"active_units": {"threshold": "high"}}, r"active_units\.threshold: expected a finite number >= 0, got 'high'"),
    ({"jacobian_frobenius": {"max_examples": 1.5}}, r"jacobian_frobenius\.max_examples: expected a positive integer"),
    ({"code_shift": {"sigm": 0.1}}, r"code_shift has no option 'sigm'\. Did you mean 'sigma'\?"),
])
def test_probe_options_are_declared_and_checked(probes, message):
    with pytest.raises(StudyError, match=r"probes: " + message):
        Study.from_dict({**BASE, "probes": probes})


def test_good_probe_options_pass():
    study = Study.from_dict({**BASE, "probes": {"denoising_psnr": {"levels": {"gaussian": [0.1, 1], "masking": [0]}},
                                                "active_units": {"threshold": 0.05}}})
    assert plan_runs(study, "mnist", "smoke")[0]


@pytest.mark.parametrize("name", ["../../../x", "a/b", "..", "x..y", "with space", "/abs", ""])
def test_a_study_name_is_a_name_not_a_path(name):
    with pytest.raises(StudyError, match=r"Study\.name must be a (non-empty string|name .*not a path)"):
        Study.from_dict({**BASE, "name": name})


def test_the_cli_refuses_a_bad_spec_with_status_2_before_creating_anything(tmp_path, capsys):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({**BASE, "grid": {"latent_dim": ["8"]}}))
    assert main(["experiment", str(spec), "--budget", "smoke", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grid.latent_dim[0]: expected a positive integer" in err[0]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the sweep folder
@pytest.fixture()
def fake_runs(monkeypatch):
    """``execute_run`` replaced by a stand-in writing a complete, empty run folder; returns the run ids it ran."""
    ran = []

    def execute(spec, out, data_dir=None):
        folder = pathlib.Path(out) / spec.model_dir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metadata.json").write_text(json.dumps({"files": {}}))
        ran.append(spec.run_id)
        return {"run_id": spec.run_id, "model_dir": spec.model_dir, "params": spec.params, "test": {"total_loss": 1.0}}

    from keraszoo.experiments import engines

    monkeypatch.setattr(engines, "execute_run", execute)  # what the local engine runs
    return ran


def test_a_grid_over_the_threshold_asks_for_yes(tmp_path, fake_runs, monkeypatch, capsys):
    monkeypatch.setattr(runner, "LARGE_SWEEP", 3)
    study = {**BASE, "grid": {"latent_dim": [2, 3, 4, 5]}}
    with pytest.raises(StudyError, match=r"Study 't' plans 4 runs on mnist at budget 'smoke', more than 3; give --yes"):
        run_study(study, budget="smoke", out=tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists() and not fake_runs
    spec = tmp_path / "big.json"
    spec.write_text(json.dumps(study))
    assert main(["experiment", str(spec), "--budget", "smoke", "--out", str(tmp_path / "out")]) == 2
    assert "plans 4 runs" in capsys.readouterr().err
    assert main(["experiment", str(spec), "--budget", "smoke", "--out", str(tmp_path / "out"), "--yes", "-q"]) == 0
    assert len(fake_runs) == 4


def test_the_threshold_is_500_runs():
    assert runner.LARGE_SWEEP == 500


def test_study_json_is_written_when_the_plan_changes_not_after_every_run(tmp_path, fake_runs, monkeypatch):
    import keraszoo.utils

    atomic = keraszoo.utils.atomic_write_text
    written = []
    monkeypatch.setattr(keraszoo.utils, "atomic_write_text", lambda path, text: (written.append(path), atomic(path, text)))
    result = run_study({**BASE, "grid": {"latent_dim": [2, 3, 4]}}, budget="smoke", out=tmp_path / "out", quiet=True)
    assert len(result.completed) == 3
    assert [p.name for p in written if p.name == "study.json"] == ["study.json"]  # once, at the start
    run_study({**BASE, "grid": {"latent_dim": [2, 3, 4]}}, budget="smoke", out=tmp_path / "out", quiet=True)
    assert [p.name for p in written if p.name == "study.json"] == ["study.json"]  # unchanged: not rewritten


def test_an_edited_spec_is_refused_in_the_old_spec_s_folder(tmp_path, fake_runs):
    out = tmp_path / "out"
    old = {**BASE, "variants": ["vae"], "grid": {"beta": [1.0]}}
    run_study(old, budget="smoke", out=out, quiet=True)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(StudyError, match=r"holds a sweep of another spec of study 't' \(changed: grid\.beta\); .*"
                                         r"Give a new --out for the edited spec"):
        run_study({**old, "grid": {"beta": [2.0]}}, budget="smoke", out=out, quiet=True)
    assert (out / "results.jsonl").read_bytes() == before and len(fake_runs) == 1
    # the same spec resumes; a new description (no run changes) too
    again = run_study({**old, "description": "reworded"}, budget="smoke", out=out, quiet=True)
    assert again.already_finished == fake_runs and not again.completed


def test_a_folder_from_an_earlier_keraszoo_resumes(tmp_path, fake_runs):
    """A sweep folder without the marker (.keraszoo.json) but with its study.json is the same sweep: it resumes."""
    out = tmp_path / "out"
    run_study(BASE, budget="smoke", out=out, quiet=True)
    (out / ".keraszoo.json").unlink()
    (out / ".lock").write_text("")  # an earlier keraszoo's lock file
    again = run_study(BASE, budget="smoke", out=out, quiet=True)
    assert again.already_finished == fake_runs and (out / ".keraszoo.json").is_file()


def test_a_folder_of_other_files_is_refused(tmp_path, fake_runs):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StudyError, match=r"is not empty and holds no keraszoo sweep \(notes\.txt would be in the way\)"):
        run_study(BASE, budget="smoke", out=out, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and not fake_runs


def test_a_second_sweep_into_a_folder_in_use_is_refused_naming_the_holder(tmp_path, fake_runs):
    import socket
    import subprocess
    import sys

    from keraszoo.output_folder import FolderLockedError

    out = tmp_path / "out"
    key = runner._sweep_key(Study.from_dict(BASE), "smoke")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from keraszoo import output_folder\n"
         f"with output_folder.claim({str(out)!r}, 'experiment', key={key!r}):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=rf"is in use: keraszoo experiment \(pid {holder.pid} on "
                                                    rf"{socket.gethostname()}, since "):
            run_study(BASE, budget="smoke", out=out, quiet=True)
    finally:
        holder.communicate("", timeout=60)
    assert not fake_runs
    assert run_study(BASE, budget="smoke", out=out, quiet=True).completed == fake_runs  # free again
