"""CONTRIBUTING.md's "Adding a variant" is short and true: one file makes a variant that the registry-wide
contract tests, the evaluation, the experiments and their consistency check, the command line and the
README table pick up at once.

Two variants written by its three steps only: ``tests/models/example_inherited_variant.py`` (a VAE under its
own key, defaults and presets, inheriting the VAE's maths and NumPy reference) and
``tests/models/example_variant.py`` (an InfoVAE, adding an MMD term and extending the VAE's reference).
Each is loaded only in subprocesses (as a pytest plugin or an import), so the registry of this session
stays the package's own.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

INHERITED = "tests.models.example_inherited_variant"  # gauss_vae: the VAE's maths
EXTENDED = "tests.models.example_variant"  # infovae: a new term, its own reference
PLUGINS = ("-p", INHERITED, "-p", EXTENDED)
KEYS = "gauss_vae or infovae"


def _python(*args, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _pytest(*args):
    """The registry-parametrized tests ``args``, with the two variants imported as plugins, restricted to them."""
    proc = _python("-m", "pytest", *args, *PLUGINS, "-q", "-k", KEYS, "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary, summary
    return int(summary.split(" passed")[0].split()[-1])


def test_new_variant_files_pass_the_registry_wide_contract():
    assert _pytest("tests/models/test_all_variants.py") >= 30  # 15+ contract tests for each of the two


def test_new_variants_pass_the_evaluation_checks_and_the_consistency_check_of_their_terms():
    # test_evaluation: the metrics their declarations promise; test_consistency (slow-marked there): every logged
    # term of evaluate() against the variant's NumPy reference -- the VAE's inherited, or the InfoVAE's extension.
    assert _pytest("tests/test_evaluation.py", "tests/experiments/test_consistency.py", "--runslow") == 4


def test_an_inherited_reference_fails_a_new_term_and_the_variants_own_reference_passes_it():
    code = f"""
import {INHERITED}, {EXTENDED}
from keraszoo.experiments import consistency
from keraszoo.models import list_variants
from keraszoo.models.vae import VAE
from keraszoo.samples import load_mnist_sample

x = load_mnist_sample()[0][:64]
for key in ("gauss_vae", "infovae"):
    model = list_variants()[key](latent_dim=4, hidden_dims=(32,), seed=1)
    model.compile()
    reported = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    terms, problems = consistency.check_test(model, reported, x, None, batch_size=32)
    assert not problems and all(t.ok for t in terms) and len(terms) == len(consistency.logged_terms(model)), (key, terms)
    print(key, sorted(t.name for t in terms))
del {EXTENDED}.InfoVAE.reference_terms  # as if the InfoVAE had kept the VAE's
terms, problems = consistency.check_test(model, reported, x, None, batch_size=32)
print(problems)
assert problems == ["not checked: test mmd_loss has no NumPy recomputation"], problems
"""
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gauss_vae ['kl_loss', 'reconstruction_loss', 'total_loss']" in proc.stdout
    assert "infovae ['kl_loss', 'mmd_loss', 'reconstruction_loss', 'total_loss']" in proc.stdout


def test_new_variants_reach_the_command_line_and_the_readme():
    code = f"""
import {INHERITED}, {EXTENDED}
from keraszoo.cli import main
from training import results_table
assert main(["train", "--model", "conv_infovae", "--mmd-lambda", "0.5", "--dry-run"]) == 0
assert main(["train", "--model", "sharp_gauss_vae", "--dry-run"]) == 0
table = results_table.render_variants()
assert "infovae" in table and "Zhao, Song & Ermon, 2019" in table and "gauss_vae" in table, table
try:
    main(["train", "--help"])
except SystemExit as done:
    assert done.code == 0
"""
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    decoder = json.JSONDecoder()
    first, end = decoder.raw_decode(proc.stdout, proc.stdout.index("{"))
    second, end = decoder.raw_decode(proc.stdout, proc.stdout.index("{", end))
    assert first["variant"] == "infovae" and first["model_kwargs"] == {"architecture": "conv", "mmd_lambda": 0.5, "seed": 0}
    assert second["variant"] == "gauss_vae" and second["model_kwargs"] == {"decoder_std": 0.05, "seed": 0}
    assert "--mmd-lambda" in proc.stdout[end:] and "--decoder-std" in proc.stdout[end:]  # their flags, in --help


#: Imports the two example files as the modules ``keraszoo.models.<name>``, where step 1 puts a variant's file:
#: ``keraszoo.load`` refuses a saved config naming a class of any module outside keras and keraszoo.
AT_STEP_ONE = f"""
import importlib.util, sys
import keraszoo.models
for name in ({INHERITED!r}, {EXTENDED!r}):
    spec = importlib.util.spec_from_file_location("keraszoo.models." + name.rsplit(".", 1)[-1], name.replace(".", "/") + ".py")
    sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[spec.name])
"""


@pytest.mark.slow  # two runs trained and evaluated, then the report with its figures: ~30 s on 2 cores
def test_a_smoke_experiment_of_the_new_variants_and_its_report_pass_the_consistency_check(tmp_path):
    code = AT_STEP_ONE + """
import json, pathlib
from keraszoo.cli import main
from tests.experiments.report_fixtures import tiny_mnist, write_results

root = pathlib.Path(sys.argv[1])
spec = {"name": "example", "variants": ["gauss_vae", "infovae"], "fixed": {"hidden_dims": [32], "batch_size": 64},
        "grid": {"latent_dim": [2]}}
data_dir = tiny_mnist(root / "data")
write_results(root / "results", data_dir, specs=[spec])
sys.exit(main(["report", str(root / "results"), "-o", str(root / "report"), "--data-dir", str(data_dir)]))
"""
    proc = _python("-c", code, str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "results" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["variant"] for r in records) == ["gauss_vae", "infovae"]
    assert "mmd_loss" in next(r for r in records if r["variant"] == "infovae")["test"]
    text = (tmp_path / "report" / "README.md").read_text()
    check = text[text.find("## Consistency check"):]
    assert "**2 of 2 runs pass.**" in check and "mmd_loss*" in check, check  # the InfoVAE's own term, recomputed
