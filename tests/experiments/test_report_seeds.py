"""The report of multi-seed results, from synthetic results lines (no training): intervals, the discussion's rule,
units kept apart, a report rebuilt from results.jsonl alone, figures large enough to read."""

import json

import numpy as np
import pytest
from matplotlib.colors import to_hex

from keraszoo.experiments import comparisons
from keraszoo.experiments import figures
from keraszoo.experiments import plotting
from keraszoo.experiments import report
from keraszoo.experiments import tables
from keraszoo.experiments import view
from keraszoo.experiments.discussion import discussion
from tests.experiments.report_fixtures import LIKELIHOODS
from tests.experiments.report_fixtures import png_size
from tests.experiments.report_fixtures import synthetic_line
from tests.experiments.report_fixtures import write_lines


def _study(lines, name="mine"):
    return view.StudyRuns(name=name, runs=lines)


def _two_settings(second):
    """Latent sizes 2 and 8 of one AE, three seeds each: the second's values are ``second``."""
    first = [100.0, 103.0, 97.0]
    return [synthetic_line("mine", "ae", seed, rec=rec, latent_dim=ld)
            for ld, values in ((2, first), (8, second)) for seed, rec in enumerate(values)]


def test_settings_group_the_seeds_and_show_mean_and_interval():
    lines = _two_settings([90.0, 92.0, 88.0])
    study = _study(lines)
    assert study.swept == ["latent_dim"]  # never the seed
    (a, b) = study.settings()
    assert a.label == "latent_dim=2" and a.n == 3 and [view.seed_of(r) for r in a.runs] == [0, 1, 2]
    iv = a.interval(lambda r: study.test_value(r, "reconstruction_loss"))
    assert iv.mean == pytest.approx(100.0) and iv.half_width == pytest.approx(4.302652729911275 * 3 / 3 ** 0.5)
    text = "\n".join(tables.terms_tables(study))
    assert f"| latent_dim=2 | 3 | {iv.text()} |" in text


def test_an_ordering_is_stated_only_when_it_holds_across_seeds():
    overlapping = discussion(_study(_two_settings([99.0, 104.0, 95.0])))  # seed by seed: -1, +1, -2
    text = "\n".join(overlapping)
    assert "no difference was detected at 3 seeds" in text and "no setting is best" in text
    assert "is lowest for" not in text and "falls with" not in text and "lower at" not in text
    separated = "\n".join(discussion(_study(_two_settings([80.0, 84.0, 77.0]))))
    assert "is lowest for latent_dim=8" in separated and "paired over 3 seeds" in separated
    assert "is lower at latent_dim=8" in separated
    one_seed = "\n".join(discussion(_study([synthetic_line("mine", "ae", 0, rec=r, latent_dim=d)
                                            for d, r in ((2, 100.0), (8, 50.0))])))
    assert "With one seed per setting no ordering can be stated." in one_seed
    assert "no difference was detected at 1 seed" in one_seed and "is lowest for" not in one_seed


def test_timings_are_never_ranked_and_the_cap_is_marked():
    lines = _two_settings([90.0, 92.0, 88.0])
    for line in lines[:3]:
        line["seconds_per_epoch"] = 10.0
        line["still_improving"], line["recent_improvement"] = True, 0.031
    study = _study(lines)
    text = "\n".join(discussion(study))
    assert "no setting is ranked by time" in text and "fastest" not in text and "slowest" not in text
    assert "1 of 2 settings had a seed reach the epoch cap (4) still improving" in text and "3.1 %" in text
    table = "\n".join(tables.convergence_table(study))
    assert "| latent_dim=2 | 3 | 4 | 4, 4, 4 | 4, 4, 4 | 0 | **yes**: 3 of 3 seeds, best fell 3.1 %" in table


def test_the_cap_and_the_seeds_count_trained_settings_apart_from_the_exact_baselines():
    lines = _two_settings([90.0, 92.0, 88.0])
    lines[0]["still_improving"], lines[0]["recent_improvement"] = True, 0.02
    lines.append(synthetic_line("mine", "pca", None, rec=80.0, kind="classical", latent_dim=4))
    text = "\n".join(discussion(_study(lines)))
    assert "1 of 2 trained settings had a seed reach the epoch cap" in text
    assert "3 settings, 7 runs: each setting ran with 3 seeds (the deterministic baselines: one run each)." in text
    # a linear autoencoder trains under the cap like the others: counted (PCA's exact fit is not)
    linear = [synthetic_line("mine", "linear_ae", seed, rec=85.0, kind="classical", latent_dim=4) for seed in range(3)]
    linear[1]["still_improving"], linear[1]["recent_improvement"] = True, 0.01
    text = "\n".join(discussion(_study(lines + linear)))
    assert "2 of 3 trained settings had a seed reach the epoch cap" in text and "linear autoencoder" in text


def _mixed_units():
    """bce and mse runs of an AE, and PCA, at two latent sizes, three seeds each."""
    lines = []
    for ld in (2, 8):
        for seed in range(3):
            for loss, rec in (("bce", 150.0 / ld), ("mse", 40.0 / ld)):
                lines.append(synthetic_line("latent", "ae", seed, rec=rec + seed, likelihood=loss, latent_dim=ld,
                                            reconstruction_loss=loss))
        lines.append(synthetic_line("latent", "pca", None, rec=80.0 / ld, kind="classical", latent_dim=ld))
    return lines


def test_a_bce_and_an_mse_run_never_share_a_column_or_a_panel(tmp_path, monkeypatch):
    lines = _mixed_units()
    study = view.StudyRuns("latent", lines, view.SavedRuns(tmp_path, results_only=True))
    panels = study.panels()
    assert list(panels) == [LIKELIHOODS["bce"], LIKELIHOODS["mse"]]
    assert {s.title for s in panels[LIKELIHOODS["mse"]] if s.title} == {"PCA"}  # PCA: squared error
    parts = "\n".join(tables.terms_tables(study)).split("### L_total and its terms: ")[1:]
    assert len(parts) == 2
    for part, loss in zip(parts, ("bce", "mse")):
        rows = [row for row in part.splitlines() if row.startswith("| ae")]
        assert len(rows) == 2 and all(f"ae, {loss}," in row for row in rows), rows
    drawn = []  # every axes drawn, and the likelihoods of its settings
    real = plotting.interval_panel
    monkeypatch.setattr(plotting, "interval_panel", lambda ax, ctx, settings, value_of, styles: (
        drawn.append((ax, {s.likelihood for s in settings})), real(ax, ctx, settings, value_of, styles))[1])
    lines_out = report._figure_lines(study, tmp_path)
    losses = [(ax.get_title(), kinds) for ax, kinds in drawn if "accuracy" not in ax.get_title()]
    # the reconstruction figure's two panels; no terms figure: these runs' L_total is the reconstruction term alone
    assert len(losses) == 2 and all(len(kinds) == 1 for _, kinds in losses), losses  # accuracies may share one
    # a log y axis where the values span a decade (squared error 3.5..40 with PCA), else linear (Bernoulli 17..76)
    scales = {next(iter(kinds)): ax.get_yscale() for ax, kinds in drawn if "accuracy" not in ax.get_title()}
    assert scales == {LIKELIHOODS["bce"]: "linear", LIKELIHOODS["mse"]: "log"}, scales
    drawn_files = {line[line.index("](") + 2 : -1] for line in lines_out if line.startswith("![")}
    assert {"figures/latent_curves_bernoulli_nll_nats.png", "figures/latent_reconstruction.png"} <= drawn_files
    assert not any("_terms" in f for f in drawn_files), drawn_files
    text = "\n".join(discussion(study))
    assert "of ae against PCA: lower at latent_dim 2, 8" in text
    assert "% below the highest" not in text
    trend_lines = [line for line in text.splitlines() if line.startswith("Test ") and " at latent_dim=" in line]
    # each trend names its likelihood: two panels state the same term's trend apart
    assert trend_lines and all(any(f"runs on the {lk})" in line for lk in LIKELIHOODS.values())
                               for line in trend_lines), trend_lines


def test_a_report_rebuilt_from_results_jsonl_alone(tmp_path):
    """No run folder here: tables, curves, interval figures, discussion and check (a); no model-figures, one line."""
    lines = _mixed_units()
    lines[0]["history"]["total_loss"][1] += 1.0  # a wrong training log: (a) still catches it
    folder = write_lines(tmp_path / "results", lines)
    path, checks = report.write_report(folder, tmp_path / "out")
    text = path.read_text()
    assert "rebuilt from `results.jsonl` alone" in text
    assert text.count("are left out: the run folders are not here") == 1  # one line, not one per run
    assert "does not load" not in text and "reconstructions.png" not in text
    assert "### L_total and its terms: Bernoulli NLL, nats" in text and "### Convergence" in text
    assert "figures/latent_curves_squared_error.png" in text and "figures/latent_reconstruction.png" in text
    assert "### Discussion" in text and "## Literature" in text and "figures/consistency.png" in text
    by_id = {c.run_id: c for c in checks}
    bad = by_id[lines[0]["run_id"]]
    assert not bad.ok and any("epoch 2" in p for p in bad.problems())
    pca = by_id[next(line["run_id"] for line in lines if line.get("kind") == "classical")]
    assert pca.not_applicable and pca.ok
    others = [c for c in checks if c.run_id not in (bad.run_id,) and not c.not_applicable]
    assert others and all(c.ok and c.history_ok and c.test_not_run and c.history_points for c in others)
    assert f"**{len(others)} of {len(others) + 1} runs pass.**" in text and "| not run |" in text
    for png in (tmp_path / "out" / "figures").iterdir():  # every figure large enough to read
        width, height = png_size(png)
        assert width >= 768 and height >= 480, (png.name, width, height)


def test_categories_are_points_named_by_their_values(tmp_path):
    """depth: layer lists and a conv setting are categories (no line joins them), ticks name them."""
    lines = [synthetic_line("depth", "ae", seed, rec=100.0 + i + seed, hidden_dims=hd, **extra)
             for i, (hd, extra) in enumerate((([512], {}), ([512, 256], {}), ([160], {"architecture": "conv"})))
             for seed in range(2)]
    study = _study(lines, "depth")
    assert view.x_key(study, study.settings()) is None
    assert view.category_labels(study, study.settings()) == ["hidden_dims 512", "hidden_dims 512-256",
                                                             "conv, hidden_dims 160"]
    assert figures.terms_vs_setting(study, tmp_path / "t.png") is None  # L_total is the reconstruction term alone
    path = figures.terms_vs_setting(study, tmp_path / "t.png", terms=["reconstruction_loss"])
    width, height = png_size(path)
    assert width >= 768 and height >= 480


def test_labels_leave_out_what_a_model_sets_alike_and_the_report_says_it(tmp_path):
    """A one-class grid: the VQ-VAE's codebook size is the same in all its runs, so its labels name the class only
    (like the AE's) and the report's header gives the fixed arguments once; every label stays unique."""
    lines = [synthetic_line("anomaly", model, seed, rec=50.0 + c + seed, classes=[c], **extra)
             for model, extra in (("ae", {}), ("vqvae", {"num_embeddings": 64, "hidden_dims": [16]}))
             for c in (0, 1) for seed in range(2)]
    study = _study(lines, "anomaly")
    assert {"num_embeddings", "hidden_dims", "classes", "model"} <= set(study.swept)
    labels = [s.label for s in study.settings()]
    assert labels == ["ae, classes 0", "ae, classes 1", "vqvae, classes 0", "vqvae, classes 1"]
    assert study.fixed_by_model() == {"vqvae": "hidden_dims 16, num_embeddings=64"}
    # a panel (a subset) names its runs as the study does, although the codebook no longer varies in it
    part = study.subset([r for r in lines if r["params"]["classes"] == [0]])
    assert [s.label for s in part.settings()] == ["ae, classes 0", "vqvae, classes 0"]
    # two codebook sizes: the argument names the VQ-VAE's settings again
    more = lines + [synthetic_line("anomaly", "vqvae", seed, rec=60.0, classes=[0], num_embeddings=128,
                                   hidden_dims=[16]) for seed in range(2)]
    labels = [s.label for s in _study(more, "anomaly").settings()]
    assert "vqvae, classes 0, num_embeddings=128" in labels and len(set(labels)) == len(labels) == 5
    write_lines(tmp_path / "sweep", lines)
    report.write_report(tmp_path / "sweep", tmp_path / "out")
    text = (tmp_path / "out" / "README.md").read_text()
    assert "left out of its labels: vqvae: hidden_dims 16, num_embeddings=64." in text
    assert "| vqvae, classes 1 |" in text


def test_the_literature_shows_every_setting_and_the_zoo_models_under_the_same_protocol():
    from keraszoo.experiments.literature import literature_section
    from keraszoo.weights import manifest

    lines = []
    for i, model in enumerate(("ae", "vae", "iwae", "hvae", "sae", "cae", "dae", "aae")):  # more than six settings
        for seed in range(2):
            line = synthetic_line("variants", model, seed, rec=70.0 + i, latent_dim=16)
            line["test"]["iwae_nll_nats"] = 90.0 + i + seed
            line["eval"]["iwae_samples"] = 100
            lines.append(line)
    text = "\n".join(literature_section([_study(lines, "variants")]))
    for i, model in enumerate(("ae", "vae", "iwae", "hvae", "sae", "cae", "dae", "aae")):
        assert f"| {model} | Bernoulli NLL, nats | 2 | {90.5 + i:g} ± 6.4 |" in text
    assert text.count("per setting** (mean ± 95 % over seeds)") == 1  # the two claims' metric, shown once
    nll = text[text.index("### Test NLL under the IWAE protocol"):]
    for name in ("vae_mnist", "iwae_mnist", "hvae_mnist"):  # the zoo's measured numbers, read from the manifest
        value = manifest.get_entry(name)["metrics"]["iwae_nll_nats"]
        row = next(r for r in nll.splitlines() if f"`{name}`" in r)
        assert row.endswith(f"| {view.fmt(value)} |") and "5000 importance samples, static binarization" in row
    assert "| 86.82 |" in nll and "not checked against the paper" in nll
    burda = [r for r in nll.splitlines() if r.startswith("| Burda, Grosse & Salakhutdinov, 2016, Table 1")]
    assert [r.rsplit("|", 2)[1].strip() for r in burda] == ["86.76", "84.78", "85.33", "82.9"]
    assert all("nbip/IWAE" in r and "59,600 training images" in r for r in burda)
    assert "100 importance samples, no binarization, mnist test (100 images), budget smoke" in nll


def test_the_pairwise_table_marks_each_pair_by_the_seeds():
    """Three depths: the first lower than the others at every seed, the other two indistinguishable."""
    values = {(512,): [60.0, 61.0, 60.5], (512, 256): [70.0, 72.0, 69.0], (512, 256, 128): [71.0, 69.5, 70.5]}
    lines = [synthetic_line("depth", "ae", seed, rec=rec, hidden_dims=list(hd))
             for hd, recs in values.items() for seed, rec in enumerate(recs)]
    table = comparisons.pairwise_tables(_study(lines, "depth"))
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in table if row[:4] in ("| 1.", "| 2.", "| 3.")]
    rows = {c[0]: c[2:] for c in cells}
    assert rows["1. hidden_dims 512"] == ["–", "<", "<"]
    assert rows["2. hidden_dims 512-256"] == [">", "–", "·"]
    assert rows["3. hidden_dims 512-256-128"] == [">", "·", "–"]
    assert any("2 of the 3 pairs differ" in line for line in table)
    # two settings: nothing to tabulate beyond the discussion's sentence
    assert comparisons.pairwise_tables(_study(lines[:6], "depth")) == []


def test_a_panel_of_more_than_twelve_settings_is_tabled_model_by_model():
    """The latent study's panel: two models at seven code sizes (14 settings) gives two 7-setting tables."""
    lines = [synthetic_line("latent", model, seed, rec=100.0 / size + 10 * (model == "vae") + seed, latent_dim=size)
             for model in ("ae", "vae") for size in (2, 4, 8, 16, 32, 64, 128) for seed in range(3)]
    table = comparisons.pairwise_tables(_study(lines, "latent"))
    titles = [line for line in table if line.startswith("### ")]
    assert titles == ["### Pairwise comparisons: test reconstruction_loss (Bernoulli NLL, nats; ae)",
                      "### Pairwise comparisons: test reconstruction_loss (Bernoulli NLL, nats; vae)"]
    assert sum("21 of the 21 pairs differ" in line for line in table) == 2  # every size apart from every other, per model
    assert comparisons.pairwise_tables(_study([r for r in lines if r["variant"] == "ae"], "latent"))[0] == (
        "### Pairwise comparisons: test reconstruction_loss (Bernoulli NLL, nats)")  # 7 settings: one table


def test_a_rewritten_report_drops_the_figures_it_no_longer_draws(tmp_path):
    lines = [synthetic_line("depth", "ae", seed, rec=60.0 + i + seed, hidden_dims=hd)
             for i, hd in enumerate(([512], [512, 256])) for seed in range(2)]
    results = tmp_path / "sweep"
    results.mkdir()
    (results / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "report"
    report.write_report(results, out)
    stale, foreign = out / "figures" / "depth_terms.png", out / "figures" / "my_own_picture.png"
    stale.write_bytes(b"an earlier report's figure")
    foreign.write_bytes(b"not the report's")
    report.write_report(results, out)
    text = (out / "README.md").read_text()
    assert not stale.exists() and foreign.exists()
    drawn = sorted(p.name for p in (out / "figures").glob("depth_*.png"))
    assert drawn and all(f"figures/{name}" in text for name in drawn)


def test_a_dae_validation_loss_on_corrupted_images_is_not_set_against_its_clean_test_loss():
    lines = [synthetic_line("noise", model, seed, rec=rec + seed, latent_dim=8, noise_level=level)
             for model, level, rec in (("ae", None, 30.0), ("dae", 0.1, 40.0), ("dae", 0.5, 60.0)) for seed in range(3)]
    for line in lines:
        if line["variant"] == "dae":  # its validation loss is on corrupted copies: far above the clean test loss
            line["history"]["val_total_loss"] = [v * 2 for v in line["history"]["val_total_loss"]]
    text = "\n".join(discussion(_study(lines, "noise")))
    assert "is not compared for dae: its validation loss is on corrupted copies" in text
    gap, = [line for line in text.splitlines() if line.startswith("Test minus validation L_total at the kept epoch")]
    assert "dae" not in gap and gap.endswith("(ae). The gap differs from zero across seeds for ae."), gap


def test_metrics_equal_in_every_run_share_one_column():
    lines = _two_settings([90.0, 92.0, 88.0])
    for i, line in enumerate(lines):  # a non-negative code: its mean and mean absolute activation are one number
        line["test"].update(mean_code_activation=0.1 * i, mean_abs_code_activation=0.1 * i, other=float(i % 2),
                            mean_activation=float(np.float32(0.1 * i)))  # the model's own float32 metric
    lines[0]["test"]["near_zero"] = 0.5  # reported by one run only: not merged with anything
    text = "\n".join(tables.other_metrics(_study(lines)))
    header = next(t for t in text.splitlines() if t.startswith("| setting"))
    assert "| mean_abs_code_activation = mean_activation = mean_code_activation |" in header
    assert header.count("mean_code_activation") == 1 and "| other |" in header and "| near_zero |" in header
    lines[1]["test"]["mean_abs_code_activation"] = 0.3  # one run differs: two columns
    header = next(t for t in "\n".join(tables.other_metrics(_study(lines))).splitlines() if t.startswith("| setting"))
    assert "| mean_abs_code_activation |" in header and "| mean_activation = mean_code_activation |" in header


def test_a_trade_off_over_decades_has_a_log_axis_and_points_named_by_their_value(tmp_path, monkeypatch):
    lines = [synthetic_line("sparsity", "sae", seed, rec=60.0 + w, sparsity_weight=w)
             for w in (0.01, 0.1, 1.0) for seed in range(3)]
    for line in lines:  # the mean activation falls over two decades as the weight grows
        line["test"]["mean_activation"] = 0.5 / (1 + 100 * line["params"]["sparsity_weight"]) + 0.001 * line["seed"]
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("axes", fig.axes))
    figures.sparsity_tradeoff(_study(lines, "sparsity"), tmp_path / "s.png")
    ax = drawn["axes"][0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "test mean_activation (log scale)"
    assert sorted(t.get_text() for t in ax.texts) == ["0.01", "0.1", "1"]
    assert ax.get_title().endswith("; points labelled by sparsity_weight")


def _two_penalties():
    """A KL and an L1 sparse autoencoder along one weight, three seeds: their sparsity_loss is not one quantity."""
    lines = []
    for penalty, weights, size in (("kl", (0.1, 1.0, 3.0), 2.0), ("l1", (0.01, 0.1, 1.0), 50.0)):
        for w in weights:
            for seed in range(3):
                line = synthetic_line("sparsity", "sae", seed, rec=60.0 + w + seed, sparsity=penalty,
                                      sparsity_weight=w)
                penalty_value = size / (1 + 10 * w) + 0.01 * seed
                line["test"]["sparsity_loss"] = penalty_value
                line["test"]["total_loss"] += w * penalty_value
                line["history"]["sparsity_loss"] = [penalty_value] * line["epochs"]
                lines.append(line)
    return lines


def test_two_definitions_of_a_term_get_their_own_panels_with_the_figures_labels(tmp_path, monkeypatch):
    study = _study(_two_penalties(), "sparsity")
    groups = study.definition_groups(study.settings(), "sparsity_loss")
    assert [[d.value for d in key] for key in groups] == [["kl"], ["l1"]]
    assert [len(ss) for ss in groups.values()] == [3, 3]
    assert list(study.definition_groups(study.settings(), "reconstruction_loss")) == [()]
    # a preset's arguments count (under the run's own); a model this keraszoo does not know has no definitions
    conv, = study.term_definition({"params": {"model": "conv_sae", "sparsity": "l1"}}, "sparsity_loss")
    assert conv.value == "l1" and study.term_definition({"params": {"model": "mine"}}, "total_loss") == ()
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.terms_vs_setting(study, tmp_path / "t.png")
    axes = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles == ["test total_loss, with the KL penalty Σ_j KL(ρ‖ρ̂_j), nats",
                      "test total_loss, with the L1 penalty Σ_j |h_j|", "test reconstruction_loss",
                      "test sparsity_loss: KL penalty Σ_j KL(ρ‖ρ̂_j), nats", "test sparsity_loss: L1 penalty Σ_j |h_j|"]
    # one legend for the figure; each panel draws only its definition's line, in the legend's colour for it
    legend, = drawn["fig"].legends
    colour = {text.get_text(): to_hex(np.ravel(handle.get_color())[:4] if not hasattr(handle, "get_xdata")
                                      else handle.get_color())
              for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    assert list(colour) == ["kl", "l1"] and colour["kl"] != colour["l1"]

    def colours(ax):
        return {to_hex(line.get_color()) for line in ax.get_lines() if np.size(line.get_xdata()) > 1}

    assert colours(axes[2]) == set(colour.values())
    assert [colours(ax) for ax in axes[3:]] == [{colour["kl"]}, {colour["l1"]}]


def test_a_table_column_of_two_definitions_says_so_under_the_table():
    text = "\n".join(tables.terms_tables(_study(_two_penalties(), "sparsity")))
    note, = [line for line in text.splitlines() if line.startswith("Not one quantity down a column")]
    assert "`sparsity=kl`: KL penalty" in note and "`sparsity=l1`: L1 penalty" in note
    assert "Compare test total_loss and test sparsity_loss only between rows of one definition" in note
    one = [line for line in _two_penalties() if line["params"]["sparsity"] == "kl"]
    assert "Not one quantity" not in "\n".join(tables.terms_tables(_study(one, "sparsity")))


def test_a_log_axis_over_two_decades_labels_its_2s_and_5s():
    plt = plotting.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1.5, 60.0])
    plotting.log_y(ax)
    fig.canvas.draw()
    labels = {t.get_text() for t in ax.yaxis.get_ticklabels(minor=True) if t.get_text()}
    assert {"2", "5", "20", "50"} <= labels and not labels & {"3", "4", "30"}
    ax.set_ylim(0.01, 1000.0)
    plotting.log_y(ax)
    fig.canvas.draw()
    assert not [t.get_text() for t in ax.yaxis.get_ticklabels(minor=True) if t.get_text()]
    plt.close(fig)


def test_a_weight_swept_from_zero_beside_a_baseline_keeps_its_axis_to_the_values(tmp_path, monkeypatch):
    """The contractive study: lambda = 0, 0.01, 0.1, 1 (a symlog axis) and the plain autoencoder as a reference line.
    The line spans the axes; it had stretched the x limits over negative values, leaving a third of each panel empty
    and the lambda = 1 point on the frame."""
    lines = [synthetic_line("contractive", "cae", seed, rec=62.0 + w + 0.1 * seed, contractive_weight=w)
             for w in (0.0, 0.01, 0.1, 1.0) for seed in range(3)]
    lines += [synthetic_line("contractive", "ae", seed, rec=57.8 + 0.1 * seed) for seed in range(3)]
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.reconstruction(_study(lines, "contractive"), tmp_path / "r.png")
    ax, = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    assert ax.get_xscale() == "symlog"
    forward = ax.xaxis.get_transform()
    (low,), (zero,), (one,), (high,) = forward.transform([[ax.get_xlim()[0]], [0.0], [1.0], [ax.get_xlim()[1]]])
    span = one - zero
    # a margin each side of the values, of under a tenth of their span: no empty stretch, no point on the frame
    assert 0 < zero - low < 0.1 * span and 0 < high - one < 0.1 * span, (ax.get_xlim(), zero, one)


def test_a_term_one_variant_logs_in_one_definition_is_not_split(tmp_path, monkeypatch):
    """The variants study: only the sparse autoencoder logs sparsity_loss (its default KL penalty), beside models that
    log no such term; one quantity, one panel, no note."""
    lines = [synthetic_line("variants", model, seed, rec=60.0 + seed, latent_dim=16) for model in ("ae", "sae", "vae")
             for seed in range(3)]
    lines += [synthetic_line("variants", "vqvae", seed, rec=55.0 + seed, latent_dim=16, prior_epochs=10)
              for seed in range(3)]  # an argument only the VQ-VAE sets, alike in all its runs
    for line in lines:
        if line["variant"] == "sae":
            line["test"]["sparsity_loss"] = 0.5 + 0.01 * line["seed"]
            line["test"]["total_loss"] += line["test"]["sparsity_loss"]
            line["history"]["sparsity_loss"] = [0.5] * line["epochs"]
    study = _study(lines, "variants")
    assert list(study.definition_groups(study.settings(), "sparsity_loss")) == [()]
    assert "Not one quantity" not in "\n".join(tables.terms_tables(study))
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.terms_vs_setting(study, tmp_path / "t.png")
    axes = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert titles.count("test sparsity_loss") == 1 and not any(":" in t for t in titles), titles
    ticks = {ax.get_title(): [t.get_text() for t in ax.get_xticklabels()] for ax in axes}
    assert ticks["test sparsity_loss"] == ["sae"]  # only the settings that log the term
    assert ticks["test total_loss"] == ["ae", "sae", "vae", "vqvae"]  # labelled as the tables label them


def test_runs_trained_again_are_set_against_their_first_records(tmp_path):
    """--retrain keeps a run's first record: the report says, per reason and variant, how many came out
    bit-identical, from which epoch the others part, and by how much their loss terms and AUROCs moved."""
    import copy

    lines = [synthetic_line("anomaly", model, 0, rec=60.0 + i, kl=2.0 if model == "vae" else None, classes=[i])
             for i, model in enumerate(("ae", "vae", "vae"))]
    assert len({line["run_id"] for line in lines}) == 3
    for line in lines:
        line["test"]["anomaly_auroc_reconstruction"] = 0.7
        line["test"]["anomaly_seconds_reconstruction"] = 3.0
    firsts = [copy.deepcopy(line) for line in lines]
    firsts[0]["test"]["anomaly_seconds_reconstruction"] = 9.0  # a timing: not a difference
    firsts[1]["history"]["kl_loss"][2] += 0.5  # parts from the third epoch on
    firsts[1]["test"]["kl_loss"] = lines[1]["test"]["kl_loss"] * 1.1
    firsts[1]["test"]["anomaly_auroc_reconstruction"] = 0.696
    folder = write_lines(tmp_path / "report", lines)
    entries = [{"reason": "a check", "superseded_at": f"2026-01-01T00:00:0{i}+00:00", "record": first}
               for i, first in enumerate(firsts)]
    (folder / "superseded.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    text = "\n".join(report.retrained_section(folder, lines))
    rows = [row for row in text.splitlines() if row.startswith("| a check")]
    assert rows == ["| a check | ae | 1 | 1 of 1 | – | 0 % | 0 | not recorded → not recorded |",
                    "| a check | vae | 2 | 1 of 2 | 3 | 9.091 % | 0.4 | not recorded → not recorded |"], rows
    assert report.retrained_section(write_lines(tmp_path / "none", lines), lines) == []


def test_a_seed_whose_code_learned_nothing_is_named_not_only_averaged():
    """One CAE seed of three stuck at the mean image (k-NN at chance) widens the interval; the report names it."""
    lines = [synthetic_line("mine", "cae", seed, rec=rec, knn=knn, latent_dim=16)
             for seed, (rec, knn) in enumerate(((206.0, 0.116), (72.6, 0.974), (70.2, 0.973)))]
    lines += [synthetic_line("mine", "ae", seed, rec=66.0 + seed / 10, knn=0.978, latent_dim=16) for seed in range(3)]
    study = _study(lines)
    table = "\n".join(tables.uninformative_codes(study))
    assert "1 of 6 runs ended with a test k-NN accuracy at most 2 times chance" in table
    assert "| cae-latent_dim=16-seed=0 | cae | 0 | 0.116 |" in table and "seed=1" not in table
    text = "\n".join(discussion(study))
    assert "1 of 6 runs ended with a code that carries no class information" in text and "cae, 1 of 3 seeds" in text
    # 0.2 is twice chance on MNIST's ten classes: the limit itself is flagged, a code above it is not
    lines[1]["test"]["knn_accuracy"], lines[0]["test"]["knn_accuracy"] = 0.2, 0.2001
    assert [r["run_id"] for r in tables.uninformative_runs(_study(lines))] == ["cae-latent_dim=16-seed=1"]
    # a conditional VAE is given the label: a code free of the class is what it aims at, not a collapse
    cvae = synthetic_line("mine", "cvae", 0, rec=75.0, knn=0.15, latent_dim=16)
    assert tables.uninformative_runs(_study([cvae])) == []
    healthy = _study([line for line in lines if line["variant"] == "ae"])
    assert tables.uninformative_codes(healthy) == []
    assert "Every run's code carries class information" in "\n".join(discussion(healthy))


@pytest.mark.parametrize("swept", ["contractive_weight", "category"])
def test_each_seed_is_a_point_beside_its_setting_s_interval(swept, tmp_path, monkeypatch):
    """A collapsed seed (206 nats beside two at 70) shows as its own point, not only as a wide interval; along a swept
    number and among categories alike."""
    from matplotlib.collections import PathCollection

    values = (206.0, 72.6, 70.2)
    if swept == "contractive_weight":
        lines = [synthetic_line("mine", "cae", seed, rec=v + w, contractive_weight=w)
                 for w in (0.0, 0.1) for seed, v in enumerate(values)]
    else:
        lines = [synthetic_line("mine", model, seed, rec=v + i, latent_dim=16)
                 for i, model in enumerate(("cae", "ae")) for seed, v in enumerate(values)]
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    figures.reconstruction(_study(lines), tmp_path / "r.png")
    ax, = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    points = sorted(y for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets())
    shift = (0.0, 0.1) if swept == "contractive_weight" else (0.0, 1.0)
    assert points == pytest.approx(sorted(v + d for d in shift for v in values))
    assert ax.get_ylim()[1] > 206.0 + shift[1]  # the outlier inside the axes
