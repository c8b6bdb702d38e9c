"""The site's policy file: floors and a ceiling that user config cannot loosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.config import site_policy
from nsml_hpc.config.settings import load_settings
from nsml_hpc.config.site_policy import (
    FALLBACK,
    SITE_CONFIG_ENV,
    SitePolicy,
    effective_policy,
    load_site_policy,
    policy_files,
    read_policy_file,
)


@pytest.fixture
def no_system_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """/etc/nsml-hpc/site.toml stands in a temporary folder (absent unless a test writes it)."""
    system = tmp_path / "etc" / "site.toml"
    monkeypatch.setattr(site_policy, "SITE_CONFIG", system)
    return system


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_site_file_leaves_the_users_settings(no_system_file: Path) -> None:
    assert load_site_policy({}) == SitePolicy()
    mine = effective_policy(
        floor_seconds=1.0, action_floor_seconds=0.5, queries_per_hour=1000, site=SitePolicy()
    )
    assert (mine.floor_seconds, mine.action_floor_seconds, mine.queries_per_hour) == (1, 0.5, 1000)


def test_the_site_file_caps_a_user_config_that_asks_for_a_1_s_floor(
    no_system_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        no_system_file,
        "[slurm]\nfloor_seconds = 120\naction_floor_seconds = 10\nqueries_per_hour = 30\n",
    )
    config = write(
        tmp_path / "config.toml",
        "slurm_floor_seconds = 1\npoll_floor_seconds = 0.5\nslurm_queries_per_hour = 5000\n",
    )
    monkeypatch.setenv("NSML_HPC_CONFIG", str(config))
    monkeypatch.delenv(SITE_CONFIG_ENV, raising=False)
    for name in ("NSML_HPC_POLL_FLOOR", "NSML_HPC_SLURM_FLOOR", "NSML_HPC_SLURM_QUERIES"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    policy = settings.slurm_policy
    assert (policy.floor_seconds, policy.action_floor_seconds, policy.queries_per_hour) == (
        120.0,
        10.0,
        30,
    )
    assert (settings.slurm_floor_seconds, settings.poll_floor_seconds) == (120.0, 10.0)
    assert settings.site.files == (str(no_system_file),)
    # Stricter settings of the user's own stay theirs.
    write(config, "slurm_floor_seconds = 600\nslurm_queries_per_hour = 12\n")
    assert load_settings().slurm_policy.floor_seconds == 600.0
    assert load_settings().slurm_policy.queries_per_hour == 12


def test_the_environment_can_name_a_stricter_file_but_never_loosen_the_sites(
    no_system_file: Path, tmp_path: Path
) -> None:
    write(no_system_file, "[slurm]\nfloor_seconds = 120\nqueries_per_hour = 30\n")
    loose = write(tmp_path / "loose.toml", "[slurm]\nfloor_seconds = 10\nqueries_per_hour = 9000\n")
    assert load_site_policy({SITE_CONFIG_ENV: str(loose)}).floor_seconds == 120.0
    assert load_site_policy({SITE_CONFIG_ENV: str(loose)}).queries_per_hour == 30
    strict = write(tmp_path / "strict.toml", "[slurm]\nfloor_seconds = 300\n")
    both = load_site_policy({SITE_CONFIG_ENV: str(strict)})
    assert (both.floor_seconds, both.queries_per_hour) == (300.0, 30)
    assert both.files == (str(no_system_file), str(strict))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[slurm\nfloor_seconds = 60\n", "is not valid TOML"),
        ("[slurm]\nfloor_seconds = 60\nfloor_seconds = 90\n", "is not valid TOML"),
        ('[slurm]\nfloor_seconds = "soon"\n', "floor_seconds must be a number"),
        ("[slurm]\nfloor_seconds = 1\n", "floor_seconds must be at least 10"),
        ("[slurm]\naction_floor_seconds = 0.1\n", "action_floor_seconds must be at least 1"),
        ("[slurm]\nqueries_per_hour = 2\n", "queries_per_hour must be at least 4"),
        ("[slurm]\nqueries_per_hour = 10.5\n", "must be a whole number"),
        ("[slurm]\nfloor_second = 60\n", "unknown key 'floor_second'"),
        ("floor_seconds = 60\n", "unknown table or key 'floor_seconds'"),
        ("slurm = 3\n", "[slurm] must be a table"),
        ("[slurm]\nfloor_seconds = nan\n", "must be a number"),
    ],
)
def test_a_site_file_that_does_not_parse_is_named_and_the_built_in_policy_applies(
    no_system_file: Path, text: str, words: str
) -> None:
    write(no_system_file, text)
    policy = load_site_policy({})
    assert policy.floor_seconds == FALLBACK.floor_seconds
    assert policy.queries_per_hour == FALLBACK.queries_per_hour
    [warning] = policy.warnings
    assert str(no_system_file) in warning and words in warning
    assert "using the built-in policy" in warning


def test_an_unreadable_or_cut_short_site_file_is_named(no_system_file: Path) -> None:
    no_system_file.parent.mkdir(parents=True)
    no_system_file.write_bytes(b"[slurm]\nfloor_seconds = 12\xff\xfe")
    [warning] = read_policy_file(no_system_file).warnings
    assert str(no_system_file) in warning
    no_system_file.write_bytes(b"[slurm]\nfloor_sec")  # truncated mid-key
    [warning] = read_policy_file(no_system_file).warnings
    assert "is not valid TOML" in warning


def test_a_broken_site_file_never_loosens_the_users_stricter_settings(no_system_file: Path) -> None:
    write(no_system_file, "not toml at all")
    mine = effective_policy(
        floor_seconds=900.0,
        action_floor_seconds=30.0,
        queries_per_hour=10,
        site=load_site_policy({}),
    )
    assert (mine.floor_seconds, mine.action_floor_seconds, mine.queries_per_hour) == (900, 30, 10)


def test_the_tests_environment_reads_no_policy_file_of_the_host(nsml_env: Path) -> None:
    """tests/conftest.py's ``nsml_env`` points both policy files at the test's folder, so a
    machine with a real /etc/nsml-hpc/site.toml runs the tests as any other."""
    assert nsml_env / "etc-site.toml" == site_policy.SITE_CONFIG
    assert policy_files() == [nsml_env / "etc-site.toml", nsml_env / "site.toml"]
    (nsml_env / "etc-site.toml").write_text("[slurm]\nfloor_seconds = 600\n", encoding="utf-8")
    assert load_site_policy().floor_seconds == 600.0  # the one the test writes, and only it
