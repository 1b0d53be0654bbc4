"""The research write-up, reports/README.md: every number it quotes comes from a committed study report, every link
resolves, and the README's Findings repeat only what the write-up says."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
WRITEUP = REPORTS / "README.md"

#: a number with a decimal point (integers — counts of seeds, runs, classes — are not checked)
DECIMAL = re.compile(r"(?<![\w.])\d+(?:,\d{3})*\.\d+(?![\w])")


def prose(text: str) -> str:
    """``text`` without code spans, code blocks and link targets (commands and paths are not claims)."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def decimals(text: str) -> set:
    return set(DECIMAL.findall(prose(text)))


def study_reports() -> dict:
    return {p: p.read_text() for p in sorted(REPORTS.rglob("README.md")) if p != WRITEUP}


def test_every_decimal_number_of_the_writeup_is_in_a_committed_report():
    quoted = decimals(WRITEUP.read_text())
    assert quoted, "the write-up quotes no measured number"
    found = set().union(*(decimals(text) for text in study_reports().values()))
    missing = sorted(quoted - found, key=float)
    assert not missing, f"reports/README.md quotes numbers no committed report holds: {missing}"


def test_every_link_of_the_writeup_resolves():
    text = WRITEUP.read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", text) if not t.startswith(("http", "#"))]
    assert targets
    missing = [t for t in targets if not (WRITEUP.parent / t).exists()]
    assert not missing, missing


def test_the_readme_findings_link_the_writeup_and_repeat_only_its_numbers():
    readme = (ROOT / "README.md").read_text()
    findings = readme[readme.index("### Findings"):]
    findings = findings[: findings.index("\n## ")]
    assert "reports/README.md" in findings
    extra = sorted(decimals(findings) - decimals(WRITEUP.read_text()), key=float)
    assert not extra, f"the README's Findings quote numbers the write-up does not: {extra}"


def committed_results() -> list:
    return sorted(REPORTS.rglob("results.jsonl"))


def test_every_committed_study_keeps_its_raw_results_and_passes_the_training_log_check():
    """Issue 28, item 7: each regenerated report has its results.jsonl beside it, and check (a) — every epoch's
    logged total_loss against its terms — reruns from the committed lines alone, without retraining."""
    import json

    from keraszoo.experiments.consistency import check_record

    assert (REPORTS / "depth" / "results.jsonl") in committed_results()
    for path in committed_results():
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert lines, path
        assert (path.parent / "README.md").is_file() and (path.parent / "study.json").is_file(), path
        failed = [(r["run_id"], c.problems()) for r in lines for c in [check_record(r)] if not c.history_ok]
        assert not failed, (path, failed[:3])
        named = (path.parent / "README.md").read_text()
        assert f"({len(lines)} runs)" in named, f"{path.parent}/README.md was not made from these {len(lines)} lines"
