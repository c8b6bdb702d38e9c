"""Who may read a run directory: the mode a user chose, applied by the job wrapper."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nsml_hpc.config.settings import load_settings
from nsml_hpc.errors import ConfigError
from nsml_hpc.job.permissions import RUN_DIR_MODES, apply_run_dir_mode


@pytest.mark.parametrize(
    ("mode", "folder", "file"), [(m, v[1], v[2]) for m, v in RUN_DIR_MODES.items()]
)
def test_the_wrapper_sets_the_chosen_modes_and_umask(
    tmp_path: Path, mode: str, folder: int, file: int
) -> None:
    run = tmp_path / "1"
    (run / "code").mkdir(parents=True)
    (run / "code" / "train.py").write_text("x")
    (run / "code" / "tool.sh").write_text("x")
    (run / "code" / "tool.sh").chmod(0o755)
    (run / "session.json").write_text("{}")
    before = os.umask(0o022)
    try:
        assert apply_run_dir_mode(run, mode) is None
        assert os.umask(0o022) == RUN_DIR_MODES[mode][0]
    finally:
        os.umask(before)
    assert stat.S_IMODE(run.stat().st_mode) == folder
    assert stat.S_IMODE((run / "code").stat().st_mode) == folder
    assert stat.S_IMODE((run / "session.json").stat().st_mode) == file
    assert stat.S_IMODE((run / "code" / "tool.sh").stat().st_mode) == file | 0o100


def test_without_a_chosen_mode_nothing_changes(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "f").chmod(0o604)
    assert apply_run_dir_mode(tmp_path, None) is None
    assert apply_run_dir_mode(tmp_path, "bogus") is None
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o604


def test_the_config_names_a_known_mode(nsml_env: Path) -> None:
    (nsml_env / "config.toml").write_text('run_dir_mode = "group"\n')
    assert load_settings().run_dir_mode == "group"
    (nsml_env / "config.toml").write_text('run_dir_mode = "secret"\n')
    with pytest.raises(ConfigError, match="run_dir_mode must be one of private, group, world"):
        load_settings()
