"""The error tree: every NsmlError subclass lives in nsml_hpc/errors.py, is drawn in its
docstring with its exit code, and has that exit code in the one table the CLI reads."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import nsml_hpc
from nsml_hpc import errors
from nsml_hpc.cli import main
from nsml_hpc.errors import EXIT_CODES, NsmlError, exit_code


def _all_subclasses() -> list[type[NsmlError]]:
    for module in pkgutil.walk_packages(nsml_hpc.__path__, "nsml_hpc."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: list[type[NsmlError]] = []
    pending: list[type[NsmlError]] = [NsmlError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return [kind for kind in found if kind.__module__.startswith("nsml_hpc")]


def _drawn_codes() -> dict[str, int]:
    """``{"SpecError": 2, ...}`` from the tree in the module docstring."""
    assert errors.__doc__ is not None
    return {
        match["name"]: int(match["code"])
        for match in re.finditer(r"(?P<name>[A-Z][A-Za-z]+)\s+(?P<code>[0-9])\s", errors.__doc__)
    }


def test_every_error_lives_in_errors_py() -> None:
    misplaced = [f"{k.__module__}.{k.__name__}" for k in _all_subclasses()]
    assert [name for name in misplaced if not name.startswith("nsml_hpc.errors.")] == []


def test_every_error_has_an_exit_code_and_is_drawn_with_it() -> None:
    drawn = _drawn_codes()
    for kind in _all_subclasses():
        assert kind in EXIT_CODES, kind.__name__
        assert drawn.get(kind.__name__) == EXIT_CODES[kind], kind.__name__
    assert set(drawn) == {kind.__name__ for kind in EXIT_CODES}


def test_the_codes_users_saw_before_stay() -> None:
    codes = {kind.__name__: code for kind, code in EXIT_CODES.items()}
    assert codes["NsmlError"] == 1
    assert codes["SpecError"] == codes["UsageError"] == 2
    assert codes["NotFoundError"] == 3
    assert codes["BackendError"] == codes["SubmitRefused"] == codes["ConnectionFailed"] == 4
    assert codes["ConfigError"] == codes["CatalogError"] == 5


def test_an_unlisted_subclass_takes_its_nearest_ancestors_code() -> None:
    class Refused(errors.SubmitRefused):
        pass

    assert exit_code(Refused("no")) == 4


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["--no-such-flag"], 2), (["model", "ls"], 2)],
)
def test_the_cli_exits_with_the_tables_code(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    assert capsys.readouterr().err.startswith("nsml-hpc: error: ")
