"""Bad inputs of sweeps: ``keraszoo experiment SPEC.json`` with a spec, a folder or a size it cannot run (issue 24).

Every case is refused with exit status 2 before the first run and before the
sweep folder is created (the contract: nothing left behind). Decisions:

* every value of a spec (its grid, each budget's grid, ``fixed``, probe
  options) is checked first: the Recipe's checks for Recipe fields, the
  variants' declared hyperparameter kinds for model arguments (a positive
  integer of at most 2**20, a finite number, one of the choices), no NaN or
  infinity anywhere; the message names the field (``grid.latent_dim[0]``);
* seeds are integers in [0, 2**32) (Keras' and NumPy's seed range);
* a study's name is a name, never a path;
* more than 500 planned runs need ``--yes``;
* a folder of an edited spec, or of files that are not a sweep, is refused
  (the old runs would mix with the new ones; nothing of the user's is written over);
* ``--state`` restores only its own sweep's state, and never with ``--shard``.
"""

from __future__ import annotations

import json

from keraszoo.experiments.study import StudyError
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import run_cli

AREA = "experiments"

BASE = {"name": "mine", "variants": ["vae"], "fixed": {"hidden_dims": [8]}, "grid": {"latent_dim": [2]}}


def case(id, description, run, error, match, **kwargs):
    return Case(id=f"sweeps-{id}", area=AREA, description=description, run=run, error=error, match=match, **kwargs)


def _write_spec(tmp, spec):
    path = inputs(tmp) / "study.json"
    path.write_text(json.dumps(spec))  # NaN and Infinity as Python's json writes them
    return path


def _experiment(*flags, out="out", **changes):
    """``keraszoo experiment tmp/in/study.json --budget smoke --out tmp/OUT FLAGS`` with BASE updated by ``changes``."""

    def run(tmp):
        path = inputs(tmp) / "study.json"
        if not path.is_file():  # a case with a prepare step wrote it there
            _write_spec(tmp, {**BASE, **changes})
        return run_cli(["experiment", str(path), "--budget", "smoke", "--out", str(tmp / out), *flags])

    return run


def _old_sweep(tmp):
    """``tmp/in/old``: the folder of a sweep of BASE with ``beta`` 1.0 (its study.json, as a sweep writes it)."""
    folder = inputs(tmp) / "old"
    folder.mkdir()
    old = {**BASE, "grid": {"beta": [1.0]}, "description": "", "budgets": {}, "probes": {}, "baselines": [],
           "datasets": ["mnist", "fashion_mnist", "cifar10"]}
    (folder / "study.json").write_text(json.dumps({"study": "mine", "budget": "smoke", "spec": old, "datasets": {}}))
    _write_spec(tmp, {**BASE, "grid": {"beta": [2.0]}})  # the edited spec


def _other_files(tmp):
    (inputs(tmp) / "mine").mkdir()
    (inputs(tmp) / "mine" / "notes.txt").write_text("my notes\n")
    _write_spec(tmp, BASE)


def _carry(action, source, dest):
    """``keraszoo.experiments.save_sweep`` / ``restore_sweep`` (``training/carry_sweep.py``) on folders under tmp/in."""

    def run(tmp):
        from keraszoo.experiments import restore_sweep
        from keraszoo.experiments import save_sweep

        fn = save_sweep if action == "save" else restore_sweep
        return fn(inputs(tmp) / source, inputs(tmp) / dest)

    return run


def _other_budget(tmp):
    """``tmp/in/old`` (a sweep at budget smoke) and ``tmp/in/other``: a sweep of the same study at budget default."""
    _old_sweep(tmp)
    record = json.loads((inputs(tmp) / "old" / "study.json").read_text())
    (inputs(tmp) / "other").mkdir()
    (inputs(tmp) / "other" / "study.json").write_text(json.dumps({**record, "budget": "default"}))


NAN = float("nan")
_POSITIVE = r"expected a positive integer <= 1048576"

CASES = [
    case("latent-dim-string", 'a spec with "latent_dim": ["8"]', _experiment(grid={"latent_dim": ["8"]}), UsageExit,
         r"grid\.latent_dim\[0\]: " + _POSITIVE + r", got '8' \(a string\)"),
    case("latent-dim-bool", 'a spec with "latent_dim": [true]', _experiment(grid={"latent_dim": [True]}), UsageExit,
         r"grid\.latent_dim\[0\]: " + _POSITIVE + r", got True \(a boolean\)"),
    case("latent-dim-float", 'a spec with "latent_dim": [8.0]', _experiment(grid={"latent_dim": [8.0]}), UsageExit,
         r"grid\.latent_dim\[0\]: " + _POSITIVE + r", got 8\.0 \(a float\)"),
    case("latent-dim-huge", 'a spec with "latent_dim": [10**12]', _experiment(grid={"latent_dim": [10**12]}),
         UsageExit, r"grid\.latent_dim\[0\]: " + _POSITIVE + r", got 1000000000000"),
    case("beta-nan", 'a spec with "beta": [NaN]', _experiment(grid={"beta": [NAN]}), UsageExit,
         r"grid\.beta\[0\]: expected a finite number, got nan \(not a number\)"),
    case("lr-nan", 'a spec with fixed "lr": NaN', _experiment(fixed={"hidden_dims": [8], "lr": NAN}), UsageExit,
         r"fixed\.lr: --lr must be a finite number > 0"),
    case("drop-remainder-nan", 'a spec with "drop_remainder": [NaN]', _experiment(grid={"drop_remainder": [NAN]}),
         UsageExit, r"grid\.drop_remainder\[0\]: --drop-remainder must be true or false; got nan"),
    case("seed-string", 'a spec with "seed": "abc"', _experiment(fixed={"hidden_dims": [8], "seed": "abc"}), UsageExit,
         r"fixed\.seed: --seed must be an integer in \[0, 2\*\*32\)"),
    case("seed-too-large", 'a spec with "seed": 2**64', _experiment(fixed={"hidden_dims": [8], "seed": 2**64}),
         UsageExit, r"fixed\.seed: --seed must be an integer in \[0, 2\*\*32\) .*; got 18446744073709551616"),
    case("probe-noise-typo", 'a spec with probe option "levels": {"gausian": [0.1]}',
         _experiment(probes={"denoising_psnr": {"levels": {"gausian": [0.1]}}}), UsageExit,
         r"probes: denoising_psnr\.levels: unknown noise type 'gausian'\. Did you mean 'gaussian'\?"),
    case("probe-sigma-nan", 'a spec with probe option "sigma": NaN', _experiment(probes={"code_shift": {"sigma": NAN}}),
         UsageExit, r"probes: code_shift\.sigma: expected a finite number >= 0, got nan"),
    case("probe-threshold-string", 'a spec with probe option "threshold": "high"',
         _experiment(probes={"active_units": {"threshold": "high"}}), UsageExit,
         r"probes: active_units\.threshold: expected a finite number >= 0, got 'high' \(a string\)"),
    case("name-is-a-path", 'a spec named "../../../x"', _experiment(name="../../../x"), UsageExit,
         r"Study\.name must be a name .*not a path.*got '\.\./\.\./\.\./x'"),
    case("too-many-runs", "a grid of 501 runs without --yes", _experiment(grid={"latent_dim": list(range(1, 502))}),
         UsageExit, r"plans 501 runs on mnist at budget 'smoke', more than 500; give --yes"),
    case("edited-spec", "the spec edited (grid.beta), run again into the old spec's folder",
         _experiment(out="in/old"), UsageExit,
         r"holds a sweep of another spec of study 'mine' \(changed: grid\.beta\).*Give a new --out", prepare=_old_sweep),
    case("folder-of-other-files", "--out a folder holding the user's own files",
         _experiment(out="in/mine"), UsageExit,
         r"is not empty and holds no keraszoo sweep \(notes\.txt would be in the way\)", prepare=_other_files),
    case("retrain-unknown-run", "--retrain a run the sweep has not finished", _experiment("--retrain", "0d565fe4"),
         UsageExit, r"--retrain 0d565fe4: not a finished run of this sweep .*finished runs: none\)\. Nothing was moved"),
    case("reason-without-retrain", "--reason without --retrain", _experiment("--reason", "a bug"), UsageExit,
         r"--reason goes with --retrain RUN_ID"),
    case("retrain-with-recheck", "--retrain and --recheck together", _experiment("--retrain", "x", "--recheck"),
         UsageExit, r"--recheck and --retrain do different things; give one of them"),
    case("state-of-another-sweep", "--state a folder holding the saved state of another budget's sweep",
         lambda tmp: _experiment("--state", str(inputs(tmp) / "other"))(tmp), UsageExit,
         r"--state .*in/other holds the state of another sweep \(mine@default\), not of this one \(mine@smoke, or "
         r"another spec of it\)\. Nothing was restored or written", prepare=_other_budget),
    case("state-a-users-folder", "--state a folder holding the user's own files",
         lambda tmp: _experiment("--state", str(inputs(tmp) / "mine"))(tmp), UsageExit,
         r"--state .*in/mine holds files but no saved state \(study\.json\).*Nothing was written",
         prepare=_other_files),
    case("state-with-shard", "--state with --shard I/N", _experiment("--state", "s", "--shard", "0/2"), UsageExit,
         r"--state saves the whole sweep's lines: run the shards without it"),
    case("carry-restore-no-state", "restore_sweep(a folder that holds no saved state, a new sweep folder)",
         _carry("restore", "missing", "sweep"), StudyError,
         r"in/missing holds no sweep \(study\.json is missing\): give the state folder"),
    case("carry-restore-into-another-sweep", "restore_sweep(a state, the folder of the same study at another budget)",
         _carry("restore", "old", "other"), StudyError,
         r"holds study 'mine' at budget 'default' and .* study 'mine' at budget 'smoke' .*not one sweep\. "
         r"Nothing was written", prepare=_other_budget),
    case("carry-save-into-a-users-folder", "save_sweep(a sweep, a folder holding the user's own files)",
         _carry("save", "old", "mine"), StudyError,
         r"in/mine holds files \(notes\.txt\) but no saved state \(study\.json\).*Nothing was written",
         prepare=lambda tmp: (_old_sweep(tmp), _other_files(tmp))),
    case("carry-save-over-another-state", "save_sweep(a sweep, the state folder of another budget's sweep)",
         _carry("save", "old", "other"), StudyError,
         r"holds study 'mine' at budget 'smoke' and .* study 'mine' at budget 'default' .*not one sweep",
         prepare=_other_budget),
]
