"""Every ``keraszoo experiment`` example of the command's help and of the README parses, and one that names a
built-in study runs it on one of that study's datasets: an example the command would refuse teaches the wrong thing."""

import pathlib
import re
import shlex

import pytest

from keraszoo.cli import build_parser
from keraszoo.experiments.studies import STUDIES

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _help_examples():
    parser = build_parser()
    command, = [a for a in parser._actions if a.dest == "command"]
    epilog = command.choices["experiment"].epilog
    return [line.strip() for line in epilog.splitlines()[1:]]


def _readme_examples():
    text = (ROOT / "README.md").read_text()
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    return [line for line in lines if line.startswith("keraszoo experiment ")]


EXAMPLES = sorted(set(_help_examples()) | set(_readme_examples()))


def test_the_examples_are_found():
    assert len(_help_examples()) >= 5 and len(_readme_examples()) >= 3


@pytest.mark.parametrize("line", EXAMPLES)
def test_an_experiment_example_parses_and_names_a_dataset_of_its_study(line):
    argv = shlex.split(line.replace("$SLURM_ARRAY_TASK_ID", "0"), comments=True)[1:]
    args = build_parser("experiment").parse_args(argv)
    study = STUDIES.get(args.study)
    if study is not None and args.dataset is not None:
        assert args.dataset in study.datasets, f"{line}: study {args.study!r} runs on {study.datasets}"
