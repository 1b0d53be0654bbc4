"""CONTRIBUTING.md's "Adding a variant" is short and true: one file makes a variant that the
registry-wide contract tests, the command line and the README table pick up at once."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

PLUGIN = "tests.models.example_variant"


def _python(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_new_variant_file_passes_the_registry_wide_contract():
    # The variant is only imported (as a plugin); every registry-parametrized test then covers it.
    proc = _python("-m", "pytest", "tests/models/test_all_variants.py", "-p", PLUGIN, "-q", "-k", "rae",
                   "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 15 and "failed" not in summary, summary


def test_a_new_variant_reaches_the_command_line_the_evaluation_and_the_readme():
    code = f"""
import json, {PLUGIN}
from keraszoo.training import train
from keraszoo.training.arguments import build_parser
from training import results_table
assert "--code-weight" in build_parser().format_help()
assert train.main(["--model", "conv_rae", "--code-weight", "0.5", "--dry-run"]) == 0
assert "rae" in results_table.render_variants() and "Ghosh et al., 2020" in results_table.render_variants()
"""
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = proc.stdout[proc.stdout.index("{"):]
    import json

    out = json.loads(resolved)
    assert out["variant"] == "rae" and out["model_kwargs"] == {"architecture": "conv", "code_weight": 0.5, "seed": 0}
