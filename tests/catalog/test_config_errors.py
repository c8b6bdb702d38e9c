"""Config mistakes are errors: one line naming the file and the problem, exit 2, and nothing
written (no catalog file, no run root), through the CLI's main()."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nsml_hpc.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nsml-hpc: error: ")
    assert "Traceback" not in err and "sqlalche.me" not in err
    return lines[0]


def _nothing_written(nsml_env: Path) -> None:
    assert not (nsml_env / "catalog.db").exists()
    assert not (nsml_env / "runs").exists()


@pytest.fixture
def config(nsml_env: Path) -> Path:
    return nsml_env / "config.toml"


def test_a_named_config_file_that_does_not_exist_is_an_error(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NSML_HPC_CONFIG", "/nonexistent/config.toml")
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2
    assert "/nonexistent/config.toml (NSML_HPC_CONFIG) does not exist" in line
    _nothing_written(nsml_env)


def test_a_misspelt_key_is_named_with_the_key_it_resembles(
    nsml_env: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text('run_rot = "/scratch/me/runs"\n')
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2
    assert f"config file {config}: unknown key 'run_rot' (did you mean 'run_root'?)" in line
    _nothing_written(nsml_env)


def test_an_unknown_key_unlike_any_lists_the_known_ones(
    nsml_env: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text("colour = 3\n")
    code, _, err = _run(["ps", "--no-sync"], capsys)
    known = "unknown key 'colour' (known keys: capture_stdout, catalog, "
    assert code == 2 and known in _one_error_line(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('poll_floor_seconds = "fast"\n', "poll_floor_seconds must be a number, got a string"),
        ("max_code_mb = true\n", "max_code_mb must be a number, got a boolean"),
        ("catalog = 5\n", "catalog must be a string, got a number"),
        ("run_root = ['/a']\n", "run_root must be a string, got an array"),
        ('gc = "weekly"\n', "gc must be a table, got a string"),
        ("submit_grace_seconds = -1\n", "submit_grace_seconds in config file"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named(
    text: str,
    expected: str,
    nsml_env: Path,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("NSML_HPC_CATALOG")  # the file's own value (or the default) counts
    monkeypatch.delenv("NSML_HPC_SUBMIT_GRACE", raising=False)
    config.write_text(text)
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2
    assert str(config) in line and expected in line
    _nothing_written(nsml_env)


def test_a_wrong_environment_override_names_the_variable(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NSML_HPC_POLL_FLOOR", "fast")
    code, _, err = _run(["ps", "--no-sync"], capsys)
    assert code == 2
    assert "NSML_HPC_POLL_FLOOR must be a number, got 'fast'" in _one_error_line(err)
    _nothing_written(nsml_env)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"catalog = \n", "is not valid TOML: "),
        (b'catalog = "\xff\xfe"\n', "is not UTF-8 text"),
        (None, "is a folder, not a TOML file"),
    ],
)
def test_an_unreadable_config_file_is_named(
    content: bytes | None,
    expected: str,
    nsml_env: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config.unlink()
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2 and str(config) in line and expected in line
    _nothing_written(nsml_env)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable folder, the same folder mounted read-only): a read-only file system, which
    binds root too (tests run as root, whom file permissions do not stop)."""
    source, target = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], check=True)
    try:
        yield source, target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def _make_catalog(path: Path) -> bytes:
    """A real catalog file (schema made), in one file; its bytes."""
    from nsml_hpc.catalog.schema import open_catalog

    catalog = open_catalog(f"sqlite:///{path}")
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    catalog.close()
    return path.read_bytes()


def test_a_catalog_on_a_read_only_file_system_is_one_line_not_a_traceback(
    nsml_env: Path,
    read_only_folder: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, target = read_only_folder
    before = _make_catalog(source / "catalog.db")
    monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{target / 'catalog.db'}")
    for argv in (["ps"], ["ps", "--no-sync"], ["show", "p/1"]):
        code, _, err = _run(argv, capsys)
        line = _one_error_line(err)
        assert code == 2, argv
        assert f"catalog {target / 'catalog.db'} is read-only" in line
    assert (source / "catalog.db").read_bytes() == before
    assert sorted(p.name for p in source.iterdir()) == ["catalog.db"]


def test_a_read_only_catalog_file_is_named(
    nsml_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "catalog.db"
    before = _make_catalog(path)
    subprocess.run(["chattr", "+i", str(path)], check=True)  # immutable: read-only for root too
    try:
        monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{path}")
        code, _, err = _run(["ps"], capsys)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert code == 2
    assert f"catalog {path} is read-only" in _one_error_line(err)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "is a folder, not a SQLite file"),
        (lambda p: p.write_bytes(b"this is no database" * 100), "is not a SQLite database"),
    ],
)
def test_an_unreadable_catalog_is_named(
    make: Callable[[Path], object],
    expected: str,
    nsml_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "catalog.db"
    make(path)
    monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{path}")
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2 and str(path) in line and expected in line


def test_a_catalog_folder_that_cannot_be_made_is_named(
    nsml_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NSML_HPC_CATALOG", "sqlite:////proc/nsml-nowhere/catalog.db")
    code, _, err = _run(["ps", "--no-sync"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "cannot create the catalog's folder /proc/nsml-nowhere" in line


@pytest.mark.parametrize(
    ("clusters", "expected"),
    [
        (
            '[clusters.hpc]\nbackend = "ssh"\nhots = "login.example.org"\n',
            "cluster 'hpc': unknown key(s) hots (did you mean 'host'?); valid keys: ",
        ),
        (
            '[clusters.hpc]\nbackend = "local"\n[clusters.hpc.defaults]\npartiton = "gpu"\n',
            "cluster 'hpc': unknown defaults key(s) partiton (did you mean 'partition'?)",
        ),
        ('[cluster.hpc]\nbackend = "local"\n', "unknown top-level key(s) cluster (did you mean"),
    ],
)
def test_a_misspelt_clusters_toml_key_says_what_it_resembles(
    nsml_env: Path, clusters: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (nsml_env / "clusters.toml").write_text(clusters)  # beside the config file
    code, _, err = _run(["cluster", "ls"], capsys)
    assert code == 5 and expected in _one_error_line(err)  # 5: invalid configuration


@pytest.mark.parametrize(
    ("gc", "expected"),
    [
        (
            "[gc]\nkeep_lst = 3\n",
            "[gc]: unknown setting 'keep_lst' (did you mean 'keep_last' or 'keep_best'?)",
        ),
        ("[gc]\nlogfile = 'x'\n", "[gc]: unknown setting 'logfile' (did you mean 'log_file'?)"),
        (
            "[gc.project.mnist]\nkeep_bets = 1\n",
            "[gc.project.mnist]: unknown setting 'keep_bets' (did you mean 'keep_best' or",
        ),
    ],
)
def test_a_misspelt_gc_setting_says_what_it_resembles(
    nsml_env: Path, config: Path, gc: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(gc)
    code, _, err = _run(["gc", "--no-sync"], capsys)
    assert code == 5 and expected in _one_error_line(err)  # 5: invalid configuration
