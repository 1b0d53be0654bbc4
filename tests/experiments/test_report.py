"""``keraszoo report``: the report of a tiny real results directory, and its exit status on a mismatch."""

import json
import os
import shutil

import pytest

from keraszoo.cli import main
from keraszoo.experiments import figures
from keraszoo.experiments import report
from keraszoo.experiments import view
from keraszoo.experiments.studies import STUDIES
from tests.experiments.report_fixtures import png_size
from tests.experiments.report_fixtures import results_dir_for
from tests.experiments.report_fixtures import synthetic_line

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    results_dir, data_dir = results_dir_for(tmp_path_factory)
    out = tmp_path_factory.mktemp("report")
    status = main(["report", str(results_dir), "-o", str(out), "--data-dir", str(data_dir)])
    return results_dir, data_dir, out, status


def test_report_files_figures_and_tables(written):
    results_dir, _, out, status = written
    assert status == 0
    text = (out / "README.md").read_text()
    records = report.read_results(results_dir)
    for study in ("beta", "latent", "contractive"):
        assert f"## Study `{study}`" in text
        terms = out / "figures" / f"{study}_terms.png"  # none where L_total is the reconstruction term alone
        assert terms.read_bytes().startswith(PNG) if study != "latent" else not terms.exists()
        assert (out / "figures" / f"{study}_reconstructions.png").read_bytes().startswith(PNG)
    for stem, _, _ in figures.STUDY_FIGURES["beta"]:
        assert (out / "figures" / f"beta_{stem}.png").is_file()
    assert (out / "figures" / "beta_samples.png").is_file() and (out / "figures" / "beta_latent.png").is_file()
    assert not (out / "figures" / "latent_samples.png").exists()  # AEs do not sample
    for name in os.listdir(out / "figures"):
        assert (out / "figures" / name).read_bytes().startswith(PNG), name
        assert f"figures/{name}" in text
        width, height = png_size(out / "figures" / name)  # 6.4 x 4 inches at 120 dpi, at least
        assert width >= 768 and height >= 480, (name, width, height)
    assert (out / "figures" / "consistency.png").is_file()
    for r in records:  # the table of every run holds each run's numbers
        rows = [line for line in text.splitlines() if line.startswith(f"| {r['run_id']} |")]
        assert any(view.fmt(r["test"]["total_loss"]) in row and view.fmt(r["history"]["total_loss"][-1]) in row
                   for row in rows), rows
    assert "keraszoo experiment beta --dataset mnist --budget smoke" in text and "keraszoo report" in text
    assert "### Discussion" in text and "### Convergence" in text
    # one seed per setting: no ordering is stated
    assert "With one seed per setting no ordering can be stated." in text and "no difference was detected at 1 seed" in text
    assert "## Literature" in text and "## Consistency check" in text
    assert f"**{len(records)} of {len(records)} runs pass.**" in text


def test_a_mismatch_fails_the_report_and_shows_in_the_table(written, tmp_path, capsys):
    results_dir, data_dir, _, _ = written
    lines = [json.loads(line) for line in (results_dir / "results.jsonl").read_text().splitlines()][:3]
    lines[0]["test"]["kl_loss"] *= 1.01  # beta-0.5: the analytic (deterministic) KL
    lines[2]["history"]["total_loss"][-1] *= 1.01
    lines[2]["study"] = "my_own_study"  # a user's study: the generic figures only
    bad = tmp_path / "bad"
    bad.mkdir()
    for line in lines:  # the runs' folders, where model_dir says
        top = line["model_dir"].split("/")[0]
        if not (bad / top).exists():
            (bad / top).symlink_to(results_dir / top)
    (bad / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    assert main(["report", str(bad), "-o", str(out), "--data-dir", str(data_dir), "--mc-samples", "8"]) == 1
    text = (out / "README.md").read_text()
    table = text[text.index("## Consistency check"):]
    failing = [row for row in table.splitlines() if "| FAIL |" in row]
    assert {row.split(" | ")[0].strip("| ") for row in failing} == {lines[0]["run_id"], lines[2]["run_id"]}
    assert "**1 of 3 runs pass.**" in text
    # A run that fails its check is marked in its study's section and left out of its figures (issue 24: the
    # report degrades per run); its study is still reported, with its tables.
    own = text[text.index("## Study `my_own_study`"):text.index("## Literature")]
    assert "### Runs left out" in own and f"| {lines[2]['run_id']} | the consistency check fails:" in own
    assert f"| {lines[2]['run_id']} |" in own.split("### L_total")[1]  # its recorded numbers stay in the tables
    assert not (out / "figures" / "my_own_study_terms.png").exists()
    beta = text[text.index("## Study `beta`"):text.index("## Study `my_own_study`")]
    assert f"| {lines[0]['run_id']} | the consistency check fails: test kl_loss" in beta
    assert "figures/beta_terms.png" in beta and "figures/beta_reconstructions.png" in beta  # the other beta run
    assert "consistency check failed" in capsys.readouterr().err


def _tampered_copy(results_dir, folder):
    """A copy of ``results_dir`` with one run's folder deleted, one's weights bit-flipped and one's metadata.json
    truncated; ``(folder, {run_id: what was done})``, the first run untouched."""
    shutil.copytree(results_dir, folder)
    records = report.read_results(folder)
    kept, deleted, flipped, torn = records[:4]
    shutil.rmtree(folder / deleted["model_dir"])
    weights = folder / flipped["model_dir"] / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40
    weights.write_bytes(bytes(data))
    metadata = folder / torn["model_dir"] / "metadata.json"
    metadata.write_text(metadata.read_text()[:100])
    return kept, {deleted["run_id"]: "No such directory", flipped["run_id"]: "Integrity check failed",
                  torn["run_id"]: "is not valid JSON"}


def test_runs_that_do_not_load_are_marked_and_every_other_run_is_reported(written, tmp_path, capsys):
    """A deleted run folder, bit-flipped weights, a torn metadata.json: the report is written, marks each of the
    three runs with what is wrong, reports the fourth in full, and exits 1."""
    results_dir, data_dir, _, _ = written
    kept, broken = _tampered_copy(results_dir, tmp_path / "results")
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "results"), "-o", str(out), "--data-dir", str(data_dir),
                 "--mc-samples", "4"]) == 1
    text = (out / "README.md").read_text()
    left_out = text[:text.index("## Literature")]
    for run_id, problem in broken.items():
        row = next(line for line in left_out.splitlines() if line.startswith(f"| {run_id} | the saved model does not"))
        assert problem in row, row
    assert "**1 of 4 runs pass.**" in text
    for r in report.read_results(tmp_path / "results"):  # every run's recorded numbers stay in the tables
        assert any(line.startswith(f"| {r['run_id']} |") and view.fmt(r["test"]["total_loss"]) in line
                   for line in text.splitlines())
    beta = text[text.index(f"## Study `{kept['study']}`"):]
    for stem in ("terms", "reconstructions", "samples", "interpolations"):  # the sound run keeps its figures
        assert f"figures/{kept['study']}_{stem}.png" in beta
        assert (out / "figures" / f"{kept['study']}_{stem}.png").read_bytes().startswith(PNG)
    assert text.count("(No figures: every run of this study is left out, see above.)") == 2
    err = capsys.readouterr().err
    assert all(f"consistency check failed for run {run_id}" in err for run_id in broken)
    assert "Traceback" not in err


def test_a_results_file_that_is_not_there_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "out")]) == 1
    assert "results.jsonl" in capsys.readouterr().err


def test_contractive_discussion_sets_each_penalty_beside_the_unpenalized_cae_too():
    """The CAE's sigmoid code alone costs reconstruction; lambda = 0 is the control that separates it."""
    def runs(model, weight, rec, jac):
        params = {"contractive_weight": weight} if weight is not None else {}
        out = []
        for seed, noise in enumerate((0.0, 1.0, -1.0)):
            line = synthetic_line("contractive", model, seed, rec=rec + noise, **params)
            line["test"].update(jacobian_frobenius=jac + noise / 10, code_shift_relative=0.5)
            out.append(line)
        return out

    lines = runs("cae", 0.0, 150.0, 10.0) + runs("cae", 1.0, 165.0, 1.0) + runs("ae", None, 80.0, 20.0)
    text = "\n".join(report.discussion(view.StudyRuns(name="contractive", runs=lines, spec=STUDIES["contractive"])))
    assert "jacobian_frobenius: cae, contractive_weight=1 1 ± 0.25 against the unpenalized CAE's (lambda = 0) " \
           "10 ± 0.25 (-90.0 %; paired over 3 seeds, every seed agrees exactly)." in text
    assert "reconstruction_loss: cae, contractive_weight=1 165 ± 2.5 against the unpenalized CAE's (lambda = 0) " \
           "150 ± 2.5 (+10.0 %; paired over 3 seeds" in text
    assert "reconstruction_loss: cae, contractive_weight=0 150 ± 2.5 against the plain autoencoder's 80 ± 2.5 (+87.5 %" in text
    assert "ae 80 ± 2.5 against the unpenalized" not in text  # the AE is not a CAE


def test_the_ladder_study_plots_the_unweighted_negative_elbo(monkeypatch, tmp_path):
    """During a KL warm-up total_loss is not the bound; the ladder figure plots reconstruction + KL (seeds' mean)."""
    lines = []
    for seed, (rec, kl) in enumerate((([80.0, 78.0], [20.0, 17.0]), ([84.0, 80.0], [18.0, 17.0]))):
        line = synthetic_line("ladder", "hvae", seed, rec=70.0, kl=10.0, epochs=2, kl_warmup_epochs=2)
        line["history"] = {"total_loss": [90.0, 95.0], "reconstruction_loss": rec, "kl_loss": kl}
        lines.append(line)
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("axes", fig.axes))
    assert "elbo" in [stem for stem, _, _ in figures.STUDY_FIGURES["ladder"]]
    figures.elbo_curves(view.StudyRuns("ladder", lines), tmp_path / "elbo.png")
    (line,) = drawn["axes"][0].get_lines()
    assert list(line.get_ydata()) == [101.0, 96.0]  # the seeds' mean of reconstruction + KL per epoch


def test_a_report_rebuilt_from_the_results_lines_alone(written, tmp_path, capsys):
    """results.jsonl without its run folders: the report is written from the lines, part (a) of the check reruns
    (with the weights the lines record), the model figures are left out with one line, and the command exits 0."""
    results_dir, _, _, _ = written
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(results_dir / "results.jsonl", alone / "results.jsonl")
    out = tmp_path / "out"
    assert main(["report", str(alone), "-o", str(out)]) == 0, capsys.readouterr().err
    text = (out / "README.md").read_text()
    records = report.read_results(alone)
    assert text.count("are left out: the run folders are not here") == 3  # one line per study, none per run
    assert "does not load" not in text and "Runs left out" not in text
    check = text[text.index("## Consistency check"):]
    assert f"**{len(records)} of {len(records)} runs pass.**" in check and "(b) was not run" in check
    assert check.count("| pass | ") >= len(records) and check.count("| not run |") == len(records)
    for study in ("beta", "latent", "contractive"):
        for stem in ("terms", "curves", "reconstruction"):
            assert (out / "figures" / f"{study}_{stem}.png").is_file() or (study, stem) == ("latent", "terms")
        assert not (out / "figures" / f"{study}_reconstructions.png").exists()
    assert "## Literature" in text and "### Discussion" in text


def test_a_denoised_psnr_is_set_beside_the_plain_autoencoder_in_db_with_the_noisy_input():
    """A decibel is a log ratio: the difference is stated in dB, never in per cent of a dB value."""
    lines = []
    for model, params, psnr in (("dae", {"noise": "gaussian", "noise_level": 0.5}, 19.5), ("ae", {}, 10.0)):
        for seed, noise in enumerate((0.0, 0.2, -0.2)):
            line = synthetic_line("noise", model, seed, rec=60.0 + noise, **params)
            line["test"].update({"denoised_psnr_gaussian_0.5_db": psnr + noise, "noisy_psnr_gaussian_0.5_db": 9.4})
            lines.append(line)
    text = "\n".join(report.discussion(view.StudyRuns(name="noise", runs=lines, spec=STUDIES["noise"])))
    assert ("PSNR (dB) of denoised test images, gaussian noise 0.5: dae 19.5 ± 0.5 against the plain autoencoder's "
            "10 ± 0.5 (+9.5 dB; paired over 3 seeds, every seed agrees exactly); the noisy input itself: 9.4 dB.") in text
    assert "%;" not in "".join(line for line in text.splitlines() if "PSNR (dB) of denoised" in line)


def test_the_noise_study_draws_each_test_noise_and_every_setting_s_reconstruction_of_it(tmp_path, monkeypatch):
    import types

    import keras
    import numpy as np

    from keraszoo.experiments import plotting
    from keraszoo.models import create_model
    from keraszoo.samples import load_mnist_sample

    x, y = load_mnist_sample()
    keras.utils.set_random_seed(0)
    model = create_model("dae", input_shape=(28, 28, 1), hidden_dims=[8], latent_dim=2)
    run = {"model_dir": "runs/a", "test": {"denoised_psnr_gaussian_0.1_db": 1.0, "denoised_psnr_gaussian_0.5_db": 1.0,
                                           "denoised_psnr_masking_0.5_db": 1.0}}
    setting = types.SimpleNamespace(runs=[run], label="dae, gaussian")
    drawn = {}
    ctx = types.SimpleNamespace(runs=[run], settings=lambda: [setting], model=lambda r: model,
                                images=lambda n: (x[:n], y[:n]))
    real = plotting.image_rows
    monkeypatch.setattr(plotting, "image_rows", lambda rows, labels, path, title=None: (
        drawn.update(rows=rows, labels=labels, title=title), real(rows, labels, path, title=title))[1])
    path = plotting.denoising_grid(ctx, tmp_path / "denoised.png", count=3)
    assert path is not None and (tmp_path / "denoised.png").read_bytes().startswith(PNG)
    assert drawn["labels"] == ["clean test images", "corrupted (the input)", "dae, gaussian"]
    assert drawn["title"] == "left to right, gaussian 0.5 | masking 0.5 (3 images each)"  # the strongest level each
    clean, noisy, out = (np.asarray(r) for r in drawn["rows"])
    assert clean.shape == noisy.shape == out.shape == (6, 28, 28, 1)
    assert np.array_equal(clean[:3], x[:3]) and np.array_equal(clean[3:], x[:3])
    masked = noisy[3:]
    assert np.all((masked == 0) | (masked == clean[3:])) and np.mean(masked == 0) > np.mean(clean[3:] == 0)
    assert not np.array_equal(noisy[:3], clean[:3])  # Gaussian noise drawn on the first block
    assert np.allclose(out, np.asarray(model.reconstruct(noisy)), atol=1e-6)  # the model's output of the noisy input
    assert figures.STUDY_FIGURES["noise"][-1].stem == "denoised" and figures.STUDY_FIGURES["noise"][-1].needs_models
