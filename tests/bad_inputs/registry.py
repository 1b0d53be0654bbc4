"""The bad-input catalogue's machinery: :class:`Case`, :func:`all_cases`, :func:`run_case`, :func:`run_cli`.

A case is one thing a user can get wrong (a wrong image size, an unknown model
name, a bad flag), the error keraszoo must answer with and a regex its message
must match. Cases live in ``tests/bad_inputs/cases_*.py``, each module listing
them in ``CASES``; ``test_catalogue.py`` runs every one and
``python -m tests.bad_inputs.catalogue`` writes ``docs/bad_inputs.md`` from them.

:func:`run_case` holds every case to the same contract:

* the call raises the expected exception type (a ``ValueError``, ``TypeError``,
  ``FileNotFoundError`` or a keraszoo subclass of them; on the command line a
  :class:`CLIExit`) whose message matches ``match``;
* it does so within :data:`CASE_TIMEOUT` seconds (no hang);
* it leaves no file behind: a case writes the inputs it prepares under
  ``tmp / "in"`` (see :func:`inputs`) and points every output elsewhere in
  ``tmp``, so any path outside ``in/`` afterwards -- or a temporary file
  (``.name.XXXX.tmp``) anywhere -- is a partial file the failing call left.
  A case with a ``prepare`` step gets a stricter check: ``tmp`` must be
  exactly as ``prepare`` left it (no file added, removed or changed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import os
import pathlib
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "AREAS",
    "CASE_TIMEOUT",
    "CLIExit",
    "Case",
    "CaseTimeout",
    "ErrorExit",
    "UsageExit",
    "all_cases",
    "describe_error",
    "inputs",
    "normalise",
    "observe",
    "register_shared_folder",
    "run_case",
    "run_cli",
]

#: The areas of the catalogue, in the order the document lists them.
AREAS = ("public API", "data", "CLI", "weights and hub", "training", "experiments")

#: Seconds a case may take before it counts as a hang (the first case of a process imports TensorFlow).
CASE_TIMEOUT = float(os.environ.get("KERASZOO_CASE_TIMEOUT", "90"))

_HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = _HERE.parents[1]

#: Where a case prepares its inputs, relative to its tmp folder (see :func:`inputs`).
INPUTS = "in"


@dataclass(frozen=True)
class Case:
    id: str                 # unique slug
    area: str               # one of AREAS
    description: str        # what the user did, one line
    run: Callable[[pathlib.Path], object]   # does the bad thing; receives an empty tmp dir
    error: type | tuple     # expected exception type(s)
    match: str              # regex the message must match (re.search, re.DOTALL: '.' spans lines)
    # --- optional extensions (keyword-only in spirit; existing cases need none of them)
    #: a known library bug: the case is expected to fail the contract (pytest xfail, strict); the reason.
    xfail: str | None = None
    #: optional set-up run before ``run``; tmp must then be left exactly as ``prepare`` left it.
    prepare: Callable[[pathlib.Path], object] | None = None
    #: seconds before the case counts as a hang.
    timeout: float = CASE_TIMEOUT

    def __post_init__(self):
        if self.area not in AREAS:
            raise ValueError(f"Case {self.id!r}: area {self.area!r} is not one of {AREAS}.")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", self.id):
            raise ValueError(f"Case id {self.id!r} is not a slug (lower case, digits, '-', '_', '.').")
        if "\n" in self.description:
            raise ValueError(f"Case {self.id!r}: the description must be one line.")
        re.compile(self.match)


# --------------------------------------------------------------------------- collecting


def _case_modules():
    return sorted(p.stem for p in _HERE.glob("cases_*.py"))


def all_cases() -> list:
    """Every ``CASES`` entry of every ``tests/bad_inputs/cases_*.py`` (modules in name order); ids unique."""
    cases, seen = [], {}
    for stem in _case_modules():
        module = importlib.import_module(f"tests.bad_inputs.{stem}")
        for case in getattr(module, "CASES", ()):
            if not isinstance(case, Case):
                raise TypeError(f"{stem}.CASES holds {case!r}, not a Case.")
            if case.id in seen:
                raise ValueError(f"Case id {case.id!r} is defined twice ({seen[case.id]} and {stem}).")
            seen[case.id] = stem
            cases.append(case)
    return cases


def inputs(tmp) -> pathlib.Path:
    """``tmp / "in"``, created: the folder where a case prepares its input files."""
    folder = pathlib.Path(tmp) / INPUTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- the command line


class CLIExit(Exception):
    """``keraszoo.cli.main`` exited with status 1 or 2 and one line on stderr: ``message``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ErrorExit(CLIExit):
    """Exit status 1: the command failed (``keraszoo: error: ...``)."""


class UsageExit(CLIExit):
    """Exit status 2: a bad command line (``keraszoo COMMAND: error: ...``)."""


def _usage_block_end(lines):
    """Index of the first line after argparse's ``usage:`` block (0 when stderr does not start with one)."""
    if not lines or not lines[0].startswith("usage: "):
        return 0
    index = 1
    while index < len(lines) and lines[index].startswith(" "):
        index += 1
    return index


@contextlib.contextmanager
def _python_default_warnings():
    """Record warnings as a plain ``python`` process would show them (its default filters, not pytest's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        yield caught


@contextlib.contextmanager
def _fd_stderr_captured(sink):
    """Point file descriptor 2 at a temporary file (TensorFlow's C++ logs), appending what it got to ``sink``."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sink.append(capture.read().decode("utf-8", "replace"))


def run_cli(argv):
    """Run ``keraszoo.cli.main(argv)`` in this process, the way a user sees it.

    stdout and stderr are captured; warnings that a plain ``python`` process would
    print count as stderr lines. argparse's ``usage:`` block before a usage
    error is not counted (it is the help, not the error).

    Returns:
        ``(stdout, stderr)`` -- only when a case expected an error and it did not
        come, so never for a well-behaved bad input: see below.

    Raises:
        ErrorExit / UsageExit (:class:`CLIExit`): exit status 1 / 2 with exactly one
            error line on stderr and no ``Traceback``; ``message`` is that line.
        AssertionError: anything else -- exit status 0 (the bad input was accepted),
            another status, a traceback, or several lines on stderr.
    """
    from keraszoo.cli import main

    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
    out, err, fd_err = io.StringIO(), io.StringIO(), []
    with (_fd_stderr_captured(fd_err), _python_default_warnings() as caught, contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err)):
        try:
            code = main(argv)
        except SystemExit as exit_:  # main() returns its status; a SystemExit escaping it is a bug
            code = exit_.code
            print(f"SystemExit({exit_.code!r}) escaped keraszoo.cli.main", file=sys.stderr)
    stderr = err.getvalue() + "".join(fd_err)
    for w in caught:
        stderr += f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n"
    lines = [line for line in stderr.splitlines() if line.strip()]
    shown = " ".join(argv)
    if code == 0:
        raise AssertionError(f"`keraszoo {shown}` succeeded (exit 0); expected an error.\nstdout:\n{out.getvalue()}")
    if code not in (1, 2):
        raise AssertionError(f"`keraszoo {shown}` exited with {code!r}, expected 1 or 2.\nstderr:\n{stderr}")
    if "Traceback" in stderr:
        raise AssertionError(f"`keraszoo {shown}` printed a traceback without --debug:\n{stderr}")
    errors = lines[_usage_block_end(lines):]
    if len(errors) != 1:
        raise AssertionError(f"`keraszoo {shown}` printed {len(errors)} lines on stderr, expected one error line:\n{stderr}")
    raise (UsageExit if code == 2 else ErrorExit)(code, errors[0])


# --------------------------------------------------------------------------- running a case


class CaseTimeout(AssertionError):
    """A case ran longer than its timeout: the bad input hangs."""


def _call_with_timeout(fn, arg, seconds, what):
    """``fn(arg)``, raising :class:`CaseTimeout` after ``seconds``.

    In the main thread a ``SIGALRM`` interrupts the call (also a blocking socket
    read); elsewhere the call runs in a daemon thread that is abandoned on timeout.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def on_alarm(signum, frame):
            raise CaseTimeout(f"{what} did not finish within {seconds:g} s (a hang).")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(arg)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    result = {}

    def target():
        try:
            result["value"] = fn(arg)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CaseTimeout(f"{what} did not finish within {seconds:g} s (a hang).")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _tree(tmp):
    """``{relative path: (kind, size, mtime_ns)}`` of everything under ``tmp``."""
    state = {}
    for path in sorted(pathlib.Path(tmp).rglob("*")):
        st = path.lstat()
        kind = "dir" if path.is_dir() and not path.is_symlink() else "file"
        state[path.relative_to(tmp).as_posix()] = (kind, None if kind == "dir" else st.st_size,
                                                   None if kind == "dir" else st.st_mtime_ns)
    return state


_TEMP_FILE = re.compile(r"(^|/)\.[^/]+\.tmp$|\.incomplete|\.partial$|\.part$")


def _leftovers(tmp, before):
    """What the failing call left in ``tmp``: a list of ``"path (why)"``."""
    after = _tree(tmp)
    if before is not None:
        found = [f"{p} (new)" for p in after if p not in before]
        found += [f"{p} (removed)" for p in before if p not in after]
        found += [f"{p} (changed)" for p in after if p in before and after[p] != before[p]]
        return sorted(found)
    found = [f"{p} (outside {INPUTS}/)" for p in after if p != INPUTS and not p.startswith(INPUTS + "/")]
    found += [f"{p} (temporary file)" for p in after if _TEMP_FILE.search(p) and p.startswith(INPUTS + "/")]
    return sorted(found)


def describe_error(err) -> str:
    """The error's type as the catalogue shows it: ``ValueError``, ``UnknownModelError (ValueError)``, ``exit 2``."""
    if isinstance(err, CLIExit):
        return f"exit {err.code}" + (" (usage)" if err.code == 2 else "")
    cls = type(err)
    if cls.__module__ == "builtins":
        return cls.__name__
    base = next((b.__name__ for b in cls.__mro__[1:] if b.__module__ == "builtins" and b is not Exception
                 and b is not BaseException), None)
    return f"{cls.__name__} ({base})" if base else cls.__name__


def error_message(err) -> str:
    if isinstance(err, CLIExit):
        return err.message
    return str(err)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_HEX40 = re.compile(r"\b[0-9a-f]{40}\b")
_HUB = re.compile(r"(?:127\.0\.0\.1|localhost):\d+")
_ADDRESS = re.compile(r"\bat 0x[0-9a-f]+\b")
_SECONDS = re.compile(r"\b\d+\.\d+ ?s\b")
#: the cause tensorflow_datasets gives for a failed download differs between machines (no network, a missing extra).
_TFDS_CAUSE = re.compile(r"\(tensorflow_datasets failed with .*\)$", re.MULTILINE)


#: Folders outside a case's tmp that cases share (built once per process), shown as ``<tmp>`` too.
_SHARED_FOLDERS = []


def register_shared_folder(folder) -> pathlib.Path:
    """Declare ``folder`` (e.g. saved models that several cases load) a place :func:`normalise` prints as ``<tmp>``."""
    folder = pathlib.Path(folder)
    if folder not in _SHARED_FOLDERS:
        _SHARED_FOLDERS.append(folder)
    return folder


def normalise(message, tmp=None) -> str:
    """``message`` as the catalogue prints it: machine-independent and stable between runs.

    tmp paths become ``<tmp>``, the checkout ``<repo>``, ``127.0.0.1:<port>``
    ``<hub>``, sha256 digests ``<sha256>``, commit ids ``<commit>``; object
    addresses, timings and the machine-dependent cause of a failed tfds download are blanked.
    """
    text = _ANSI.sub("", str(message))
    places = [] if tmp is None else [str(tmp), os.path.realpath(tmp)]
    places += [p for folder in _SHARED_FOLDERS for p in (str(folder), os.path.realpath(folder))]
    for form in sorted(set(places), key=len, reverse=True):
        text = text.replace(form, "<tmp>")
    text = text.replace(str(REPO_ROOT), "<repo>")
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        text = text.replace(home, "~")
    text = _HUB.sub("<hub>", text)
    text = _HEX64.sub("<sha256>", text)
    text = _HEX40.sub("<commit>", text)
    text = _ADDRESS.sub("at 0x…", text)
    text = _SECONDS.sub("<t> s", text)
    text = _TFDS_CAUSE.sub("(tensorflow_datasets failed with <cause>)", text)
    return text


def run_case(case: Case, tmp) -> tuple:
    """Run ``case`` in the empty folder ``tmp``; returns ``(error type, normalised message)``.

    Raises:
        AssertionError: no error, another error type, a message that does not match
            ``case.match``, a hang (:class:`CaseTimeout`) or a file left behind.
    """
    tmp = pathlib.Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    if any(tmp.iterdir()):
        raise AssertionError(f"run_case needs an empty folder, {tmp} is not.")
    before = None
    if case.prepare is not None:
        case.prepare(tmp)
        before = _tree(tmp)
    try:
        _call_with_timeout(case.run, tmp, case.timeout, f"Case {case.id!r}")
    except CaseTimeout:
        raise
    except case.error as err:
        caught = err
    except Exception as err:  # noqa: BLE001 - any other error breaks the contract
        raise AssertionError(
            f"Case {case.id!r} raised {type(err).__module__}.{type(err).__name__}, expected {_names(case.error)}: {err}"
        ) from err
    else:
        raise AssertionError(f"Case {case.id!r} raised nothing; expected {_names(case.error)} matching {case.match!r}.")
    message = error_message(caught)
    if not re.search(case.match, message, re.DOTALL):
        raise AssertionError(f"Case {case.id!r}: the {type(caught).__name__} message does not match {case.match!r}:\n{message}")
    if "Traceback (most recent call last)" in message:
        raise AssertionError(f"Case {case.id!r}: the message holds a traceback:\n{message}")
    left = _leftovers(tmp, before)
    if left:
        raise AssertionError(f"Case {case.id!r} left files behind: {', '.join(left)}")
    return describe_error(caught), normalise(message, tmp)


def observe(case: Case, tmp) -> tuple:
    """What ``case`` does today, without judging it: ``(error type, normalised message)``.

    For the catalogue's known-bug rows (``xfail``): ``("no error", "")`` when the
    call succeeds, ``("hang", ...)`` when it times out.
    """
    tmp = pathlib.Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    if case.prepare is not None:
        case.prepare(tmp)
    try:
        _call_with_timeout(case.run, tmp, case.timeout, f"Case {case.id!r}")
    except CaseTimeout as err:
        return "hang", str(err)
    except Exception as err:  # noqa: BLE001 - reported, not judged
        return describe_error(err), normalise(error_message(err), tmp)
    return "no error", ""


def _names(error):
    errors = error if isinstance(error, tuple) else (error,)
    return " or ".join(e.__name__ for e in errors)


def case_fields():
    """The names of :class:`Case`'s fields (the six every case sets come first)."""
    return [f.name for f in dataclasses.fields(Case)]
