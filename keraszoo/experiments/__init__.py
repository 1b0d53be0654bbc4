"""Experiments: declarative sweeps over any constructor or training argument, one results line per run.

``keraszoo experiment STUDY --out DIR`` from Python::

    from keraszoo.experiments import run_study, read_results
    run_study("beta", dataset="mnist", budget="smoke", out="runs/beta")
    for record in read_results("runs/beta"):
        print(record["params"]["beta"], record["test"]["total_loss"])

* :mod:`~keraszoo.experiments.study`: :class:`Study` (a dataclass, JSON-loadable) and the budgets;
* :mod:`~keraszoo.experiments.studies`: the built-in studies (:data:`STUDIES`) and :func:`get_study`;
* :mod:`~keraszoo.experiments.planning`: the planned runs (:class:`RunSpec`, :func:`plan_runs`);
* :mod:`~keraszoo.experiments.execute`: one run (:func:`execute_run`): one model trained, measured and saved;
* :mod:`~keraszoo.experiments.results`: ``results.jsonl`` and the folder layout;
* :mod:`~keraszoo.experiments.runner`: the sweep (:func:`run_study`: lock, shards, skipping finished runs);
* :mod:`~keraszoo.experiments.engines`: where its runs execute (this process, local workers, Ray);
* :mod:`~keraszoo.experiments.probes`: what a study measures beyond ``keraszoo.evaluate`` (:data:`PROBES`);
* :mod:`~keraszoo.experiments.classical`: PCA and the linear autoencoder, fit in the same sweep (a study's ``classical``);
* :mod:`~keraszoo.experiments.carry`: an unfinished sweep carried to another machine by its results lines
  (:func:`save_sweep`, :func:`restore_sweep`; ``training/carry_sweep.py``);
* :mod:`~keraszoo.experiments.reproducibility`: one finished run trained again in a fresh process and compared
  (:func:`recheck`);
* the report: :mod:`~keraszoo.experiments.report` (the README), :mod:`~keraszoo.experiments.view` (each saved
  model and test split read once; the runs grouped into settings and likelihoods), :mod:`~keraszoo.experiments.stats`
  (means, 95 % intervals over seeds, paired comparisons), :mod:`~keraszoo.experiments.figures` (drawn with
  :mod:`~keraszoo.experiments.plotting`), :mod:`~keraszoo.experiments.discussion`,
  :mod:`~keraszoo.experiments.literature` and :mod:`~keraszoo.experiments.consistency` (the L_total check,
  against each variant's own NumPy ``reference_terms``).

See :mod:`keraszoo.experiments.runner` for the folder layout, the record's fields and shards (``--shard I/N``),
and :mod:`keraszoo.experiments.engines` for where the runs execute (local processes, a Ray cluster).
"""

from keraszoo.experiments.carry import restore_sweep
from keraszoo.experiments.carry import save_sweep
from keraszoo.experiments.execute import RunBusy
from keraszoo.experiments.planning import RunSpec
from keraszoo.experiments.planning import plan_runs
from keraszoo.experiments.probes import PROBES
from keraszoo.experiments.reproducibility import recheck
from keraszoo.experiments.results import ResultsFile
from keraszoo.experiments.results import TornLineWarning
from keraszoo.experiments.results import read_results
from keraszoo.experiments.runner import LARGE_SWEEP
from keraszoo.experiments.runner import RunFailed
from keraszoo.experiments.runner import RunSkipped
from keraszoo.experiments.runner import SweepResult
from keraszoo.experiments.runner import execute_run
from keraszoo.experiments.runner import run_study
from keraszoo.experiments.studies import STUDIES
from keraszoo.experiments.studies import get_study
from keraszoo.experiments.studies import list_studies
from keraszoo.experiments.study import BUDGETS
from keraszoo.experiments.study import Budget
from keraszoo.experiments.study import Study
from keraszoo.experiments.study import StudyError
from keraszoo.experiments.study import expand_grid

__all__ = [
    "BUDGETS",
    "Budget",
    "LARGE_SWEEP",
    "PROBES",
    "ResultsFile",
    "RunBusy",
    "RunFailed",
    "RunSkipped",
    "RunSpec",
    "STUDIES",
    "Study",
    "StudyError",
    "SweepResult",
    "TornLineWarning",
    "execute_run",
    "expand_grid",
    "get_study",
    "list_studies",
    "plan_runs",
    "read_results",
    "recheck",
    "restore_sweep",
    "run_study",
    "save_sweep",
]
