"""Smoke test of ``benchmarks/run.py --quick``: every case runs and writes its numbers.

No timing is asserted: the quick numbers mean nothing (tiny sizes, one round) and
speed claims belong to the benchmark itself, run on a known machine (BENCHMARKS.md).
This checks that the command works end to end and that its JSON holds every ratio and
figure, each a positive, finite number with a unit. About 90 s on 2 cores, hence slow.
"""

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

LATENCY_APIS = ("encode", "decode", "reconstruct", "predict")


def _positive_finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_run_writes_every_ratio_and_figure(tmp_path):
    from keraszoo.models import list_variants

    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    written = list(tmp_path.glob("*-quick.json"))
    assert len(written) == 1, sorted(p.name for p in tmp_path.iterdir())
    result = json.loads(written[0].read_text())

    assert result["quick"] is True
    assert result["errors"] == {}
    assert result["machine"]["versions"]["keraszoo"]
    assert "train_vae_vs_keras_io" in proc.stdout  # the table is printed

    expected_ratios = {"train_vae_vs_keras_io", "mirrored_2cpu_vs_1", "train_conv_ae_vs_tape"}
    expected_ratios |= {f"train_{key}_vs_tape" for key in list_variants()}
    assert expected_ratios <= set(result["ratios"])
    assert "pythae_vae_vs_keraszoo" in result["ratios"] or "pythae_vae_vs_keraszoo" in result["skipped"]
    for name, ratio in result["ratios"].items():
        assert _positive_finite(ratio["value"]), (name, ratio)
        assert ratio["numerator"] in result["figures"] and ratio["denominator"] in result["figures"], name
        assert all(_positive_finite(v) for v in ratio["per_round"]), (name, ratio)

    expected_figures = {"keraszoo_list_s", "import_and_load_s", "demo_peak_rss_mib"}
    expected_figures |= {f"{api}_{n}_{q}_ms" for api in LATENCY_APIS for n in (1, 256) for q in ("p50", "p95")}
    expected_figures |= {f"fit_dense_vae_batch_{bs}_images_per_s" for bs in (32, 64, 128, 256, 512, 1024)}
    assert expected_figures <= set(result["figures"])
    for name, figure in result["figures"].items():
        assert _positive_finite(figure["value"]), (name, figure)
        assert figure["unit"], name
    assert result["figures"]["keraszoo_list_s"]["imports_tensorflow"] in (True, False)
