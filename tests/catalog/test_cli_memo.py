"""``nsml-hpc memo`` (the TUI's ``e`` key calls the same ``set_memo``) and ``nsml-hpc tui``'s
place in the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import build_parser, main
from tests.tui.conftest import build_catalog


@pytest.fixture
def catalog_url(nsml_env: Path) -> str:
    url = os.environ["NSML_HPC_CATALOG"]
    catalog = open_catalog(url)
    build_catalog(catalog, nsml_env / "runs")
    catalog.close()
    return url


def test_memo_sets_and_clears(catalog_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memo", "mnist/2", "lr", "sweep"]) == 0
    assert "memo of mnist/2 saved" in capsys.readouterr().out
    catalog = open_catalog(catalog_url)
    assert get_session(catalog, "mnist/2").memo == "lr sweep"
    assert main(["memo", "mnist/2"]) == 0
    assert get_session(catalog, "mnist/2").memo == ""
    catalog.close()


def test_memo_refuses_control_characters_and_unknown_sessions(
    catalog_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["memo", "mnist/2", "a\x1b[31mred"]) == 2
    assert main(["memo", "mnist/99", "x"]) == 3
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("nsml-hpc: error: ") for line in errors)


def test_tui_is_a_command_with_help() -> None:
    parser = build_parser()
    args = parser.parse_args(["tui", "mnist/3"])
    assert args.session == "mnist/3"
    assert "terminal UI" in (args.func.__doc__ or "")
