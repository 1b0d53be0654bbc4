"""Every bad-input case holds the contract (tests/bad_inputs/registry.py), and docs/bad_inputs.md is up to date."""

from __future__ import annotations

import difflib

import pytest

from tests.bad_inputs import catalogue
from tests.bad_inputs.registry import AREAS
from tests.bad_inputs.registry import Case
from tests.bad_inputs.registry import CLIExit
from tests.bad_inputs.registry import ErrorExit
from tests.bad_inputs.registry import UsageExit
from tests.bad_inputs.registry import all_cases
from tests.bad_inputs.registry import inputs
from tests.bad_inputs.registry import normalise
from tests.bad_inputs.registry import run_case
from tests.bad_inputs.registry import run_cli

CASES = all_cases()


def _param(case):
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True, raises=AssertionError)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case, tmp_path):
    error, message = run_case(case, tmp_path)
    assert message, f"{case.id}: empty error message"
    catalogue.RESULTS[case.id] = (error, message, None)


def test_the_catalogue_is_large_and_covers_every_area():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {"public API", "data", "CLI"} <= {c.area for c in CASES}
    assert all(c.area in AREAS for c in CASES)


def test_docs_bad_inputs_md_is_what_the_generator_writes():
    expected = catalogue.render(CASES)
    current = catalogue.DOC.read_text(encoding="utf-8") if catalogue.DOC.is_file() else ""
    if current != expected:
        diff = "\n".join(difflib.unified_diff(current.splitlines(), expected.splitlines(), "docs/bad_inputs.md (committed)",
                                              "docs/bad_inputs.md (generated now)", lineterm="", n=0))
        pytest.fail(f"docs/bad_inputs.md is stale: regenerate it with `{catalogue.COMMAND}` and commit it.\n"
                    + "\n".join(diff.splitlines()[:40]), pytrace=False)


# --------------------------------------------------------------------------- the machinery itself


def _case(run, error=ValueError, match="boom", **kwargs):
    return Case(id="probe", area="public API", description="a probe", run=run, error=error, match=match, **kwargs)


def _raise(exc):
    def run(tmp):
        raise exc

    return run


def test_run_case_returns_the_error_and_the_normalised_message(tmp_path):
    assert run_case(_case(_raise(ValueError(f"boom at {tmp_path}/x and 127.0.0.1:8123"))), tmp_path) == (
        "ValueError", "boom at <tmp>/x and <hub>")


@pytest.mark.parametrize("run, why", [
    (lambda tmp: None, "raised nothing"),
    (_raise(RuntimeError("boom")), "raised builtins.RuntimeError, expected ValueError"),
    (_raise(ValueError("bang")), "does not match"),
])
def test_run_case_refuses_a_broken_contract(tmp_path, run, why):
    with pytest.raises(AssertionError, match=why):
        run_case(_case(run), tmp_path)


def test_run_case_refuses_a_partial_file(tmp_path):
    def leaves_output(tmp):
        (inputs(tmp) / "input.png").write_bytes(b"ok")  # inputs are the case's own
        (tmp / "out.npy").write_bytes(b"half")
        raise ValueError("boom")

    with pytest.raises(AssertionError, match=r"left files behind: out\.npy"):
        run_case(_case(leaves_output), tmp_path)


def test_run_case_with_prepare_refuses_a_changed_input(tmp_path):
    def prepare(tmp):
        (tmp / "model").mkdir()
        (tmp / "model" / "weights.h5").write_bytes(b"original")

    def clobbers(tmp):
        (tmp / "model" / "weights.h5").write_bytes(b"half-written")
        raise ValueError("boom")

    with pytest.raises(AssertionError, match=r"model/weights\.h5 \(changed\)"):
        run_case(_case(clobbers, prepare=prepare), tmp_path)


def test_run_case_stops_a_hang(tmp_path):
    import time

    with pytest.raises(AssertionError, match="did not finish within 0.2 s"):
        run_case(_case(lambda tmp: time.sleep(30), timeout=0.2), tmp_path)


def test_run_cli_reports_one_error_line(tmp_path):
    with pytest.raises(ErrorExit) as info:
        run_cli(["info", "no_such_model_anywhere"])
    assert info.value.code == 1 and info.value.message.startswith("keraszoo: error: Unknown pretrained model")
    with pytest.raises(UsageExit) as info:
        run_cli(["sample", "vae_mnist", "-n", "0", "-o", str(tmp_path / "s.png")])
    assert info.value.code == 2 and info.value.message.startswith("keraszoo sample: error: argument -n/--num")
    assert isinstance(info.value, CLIExit)


def test_run_cli_refuses_success_and_tracebacks(tmp_path, monkeypatch):
    with pytest.raises(AssertionError, match="succeeded"):
        run_cli(["list"])
    from keraszoo.cli import catalog

    def crash(args):
        import traceback

        try:
            raise RuntimeError("inner")
        except RuntimeError:
            traceback.print_exc()
        return 1

    monkeypatch.setattr(catalog, "cmd_list", crash)
    with pytest.raises(AssertionError, match="traceback"):
        run_cli(["list"])


def test_normalise_blanks_what_changes_between_runs(tmp_path):
    text = normalise(f"{tmp_path}/a sha {'ab' * 32} on localhost:5000 object at 0x7f3a2b", tmp_path)
    assert text == "<tmp>/a sha <sha256> on <hub> object at 0x…"
