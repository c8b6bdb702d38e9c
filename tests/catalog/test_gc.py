"""``nsml-hpc gc`` and ``model`` commands on real folders and a real catalog: dry run, delete,
the lock (two gc at once), ``kill -9`` in the middle (catalog and disk agree afterwards,
nothing half-listed at any instant), the path guards, bad input, and the cron line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session
from nsml_hpc.catalog.snapshots import snapshots_of
from nsml_hpc.cli import main
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import BackendError, UnsafePath
from nsml_hpc.job.snapshot_format import is_listed_name
from nsml_hpc.job.snapshot_store import PendingSnapshot, hidden_entries, list_snapshots
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.snapshots.delete import snapshot_folder
from nsml_hpc.snapshots.gc import gc_lock
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.workspace import Workspace


def _make_session(
    workspace: Workspace, snapshots: int, *, state: str = "COMPLETED", project: str = "gc"
) -> SessionRecord:
    runs = workspace.settings.run_root
    user = current_user()
    record = reserve_session(
        workspace.catalog,
        spec=SessionSpec(project=project, script="train.py"),
        user=user,
        run_dir_for=lambda n: str(runs / user / project / str(n)),
        is_free=lambda n: not (runs / user / project / str(n)).exists(),
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(
        workspace.catalog, record.id, job_id=str(9000 + record.id), cluster="local", now=time.time()
    )
    with workspace.catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(col(SessionRecord.id) == record.id)
            .values(state=state, ended_at=time.time() - 60 if state == "COMPLETED" else None)
        )
    root = Path(record.run_dir) / "snapshots"
    for step in range(snapshots):
        pending = PendingSnapshot.begin(root, f"step-{step}")
        (pending.folder / "model.bin").write_bytes(b"x" * 1000)
        pending.commit(
            step=step,
            metrics={"val_loss": abs(step - 3) + 0.5},
            job_id="1",
            session=record.name,
            restart_count=0,
        )
    assert record.id is not None
    refresh_session(workspace.catalog, LocalFiles(), record.id, record.name, record.run_dir, 0.0)
    return get_session(workspace.catalog, record.name)


def _policy(nsml_env: Path, text: str) -> None:
    (nsml_env / "config.toml").write_text(text)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _consistent(workspace: Workspace, record: SessionRecord) -> set[str]:
    """Catalog rows (not being deleted) == complete snapshot folders on disk; returns them."""
    assert record.id is not None
    rows = {row.tag for row in snapshots_of(workspace.catalog, [record.id])[record.id]}
    listing = list_snapshots(Path(record.run_dir) / "snapshots")
    assert listing.damaged == {}
    on_disk = {manifest.tag for manifest, _ in listing.intact}
    assert rows == on_disk
    return rows


def test_gc_dry_run_prints_the_plan_and_deletes_nothing(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 6)
    _policy(nsml_env, '[gc]\nkeep_last = 2\nkeep_best = 1\nbest_metric = "val_loss"\n')
    code, out, _ = _run(["gc", "--no-sync"], capsys)
    assert code == 0
    assert "would delete gc/1:step-0  1000 B  (not among the last 2 / best 1 by val_loss)" in out
    assert "would delete 3 snapshot(s), freeing 2.9 KiB" in out
    assert len(list_snapshots(Path(record.run_dir) / "snapshots").intact) == 6


def test_gc_yes_deletes_exactly_the_plan_and_keeps_protected_ones(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = _make_session(workspace, 4, state="RUNNING")
    done = _make_session(workspace, 5)
    assert main(["model", "pin", done.name, "step-0"]) == 0
    _policy(nsml_env, "[gc]\nkeep_last = 1\n")
    code, out, _ = _run(["gc", "--yes", "--no-sync"], capsys)
    assert code == 0, out
    assert _consistent(workspace, live) == {"step-3"}  # the latest of a live session
    assert _consistent(workspace, done) == {"step-0", "step-4"}  # pinned + newest
    assert "deleted 6 snapshot(s)" in out
    assert hidden_entries(Path(done.run_dir) / "snapshots") == []


def test_a_second_gc_while_one_holds_the_lock_does_nothing(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 3)
    _policy(nsml_env, "[gc]\nkeep_last = 1\n")
    with gc_lock():
        code, _, err = _run(["gc", "--yes", "--no-sync"], capsys)
        assert code == 1
        assert "another nsml-hpc gc is running" in err
        assert _run(["gc", "--cron", "--no-sync"], capsys)[0] == 0
    log = (nsml_env / "xdg-data" / "nsml-hpc" / "gc.log").read_text()
    assert "skipped: another nsml-hpc gc is running" in log
    assert len(_consistent(workspace, record)) == 3


def _gc_process() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nsml_hpc", "gc", "--yes", "--no-sync"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_gc_yes_at_once_delete_each_snapshot_once(workspace: Workspace, nsml_env: Path) -> None:
    records = [_make_session(workspace, 60) for _ in range(3)]
    _policy(nsml_env, "[gc]\nkeep_last = 5\n")
    first, second = _gc_process(), _gc_process()
    outputs = [proc.communicate(timeout=240) for proc in (first, second)]
    codes = sorted(proc.returncode for proc in (first, second))
    deleted = [
        line.split()[1]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("deleted ") and ":" in line.split()[1]
    ]
    assert len(deleted) == len(set(deleted)) == 3 * 55  # none twice, all of the plan
    assert codes[0] == 0
    if codes[1] != 0:  # they overlapped: the loser says so and did nothing
        assert any("another nsml-hpc gc is running" in err for _, err in outputs)
    for record in records:
        assert _consistent(workspace, record) == {f"step-{i}" for i in range(55, 60)}


def test_gc_killed_at_random_instants_leaves_catalog_and_disk_consistent(
    workspace: Workspace, nsml_env: Path
) -> None:
    records = [_make_session(workspace, 80) for _ in range(3)]
    _policy(nsml_env, "[gc]\nkeep_last = 3\n")
    assert main(["model", "ls", records[0].name]) == 0  # every folder is in the catalog
    rng = random.Random(99)
    for _ in range(6):
        proc = _gc_process()
        time.sleep(rng.uniform(0.4, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for record in records:
            # At any instant: nothing half-listed (a visible folder is complete, and every
            # catalog row not claimed for deletion has its complete folder).
            assert record.id is not None
            listing = list_snapshots(Path(record.run_dir) / "snapshots")
            assert listing.damaged == {}
            visible = {manifest.tag for manifest, _ in listing.intact}
            rows = {row.tag for row in snapshots_of(workspace.catalog, [record.id])[record.id]}
            assert rows <= visible
    final = _gc_process()
    _, err = final.communicate(timeout=240)
    assert final.returncode == 0, err
    for record in records:
        assert _consistent(workspace, record) == {"step-77", "step-78", "step-79"}
        assert hidden_entries(Path(record.run_dir) / "snapshots") == []
    assert snapshots_of(workspace.catalog, [r.id for r in records if r.id], include_deleting=True)


def test_model_rm_refuses_protected_snapshots_and_deletes_others(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    live = _make_session(workspace, 3, state="RUNNING")
    code, _, err = _run(["model", "rm", live.name, "step-2"], capsys)
    assert code == 2 and "latest snapshot of a session that is RUNNING" in err
    assert main(["model", "pin", live.name, "step-0"]) == 0
    code, _, err = _run(["model", "rm", live.name, "step-0"], capsys)
    assert code == 2 and "is pinned" in err
    code, out, _ = _run(["model", "rm", live.name, "step-1"], capsys)
    assert code == 0 and "deleted gc/1:step-1" in out
    assert _consistent(workspace, live) == {"step-0", "step-2"}


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["model", "ls", "gc/99"], 3, "no session 'gc/99'"),
        (["model", "rm", "gc/1", "step-99"], 3, "has no snapshot 'step-99'"),
        (["model", "pin", "gc/1", "../../x"], 3, "has no snapshot"),
        (["model", "pull", "gc/1", "nope", "/tmp"], 3, "has no snapshot 'nope'"),
        (["model", "ls", "not-a-session"], 2, "PROJECT/NUMBER"),
        (["fork", "gc/1", "--snapshot", "best:bleu", "--no-sync"], 3, "recorded metric 'bleu'"),
        (["fork", "gc/1", "--snapshot", "best:", "--no-sync"], 2, "invalid selector"),
        (["fork", "gc/1", "--set", "lr rate=1", "--no-sync"], 2, "not a hyperparameter name"),
        (["fork", "gc/1", "--set", "lr=1", "--no-sync"], 2, "no hyperparameter 'lr'"),
        (["gc", "--install-cron", "every day", "--print"], 2, "invalid cron schedule"),
        (["gc", "--dry-run", "--yes"], 2, "cannot go with"),
    ],
)
def test_bad_input_is_one_clear_error_line(
    workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    _make_session(workspace, 2)
    got, out, err = _run(argv, capsys)
    assert (got, out) == (code, "")
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_a_negative_policy_is_a_config_error(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 2)
    _policy(nsml_env, "[gc]\nkeep_last = -1\n")
    code, _, err = _run(["gc", "--yes", "--no-sync"], capsys)
    assert code == 5 and "keep_last must be a whole number >= 0" in err
    assert len(_consistent(workspace, record)) == 2


def test_a_hand_edited_snapshot_is_reported_and_never_deleted(
    workspace: Workspace, nsml_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 3)
    (Path(record.run_dir) / "snapshots" / "step-0" / "model.bin").unlink()
    _policy(nsml_env, "[gc]\nkeep_last = 0\n")
    code, out, _ = _run(["gc", "--yes", "--no-sync"], capsys)
    assert code == 0
    assert "warning: snapshot gc/1:step-0 is damaged (missing model.bin); kept" in out
    assert (Path(record.run_dir) / "snapshots" / "step-0").is_dir()
    code, out, err = _run(["model", "ls", record.name], capsys)
    assert "DAMAGED" in out and "gc/1:step-0 is damaged" in err


def test_gc_never_follows_a_link_out_of_the_snapshots_folder(
    workspace: Workspace, nsml_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 2)
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "manifest.json").write_text(json.dumps({"files": [], "created": 1.0, "step": 0}))
    (Path(record.run_dir) / "snapshots" / "step-linked").symlink_to(victim)
    (Path(record.run_dir) / "snapshots" / ".deleting-x-1").symlink_to(victim)
    _policy(nsml_env, "[gc]\nkeep_last = 0\nfinished_days = 0\n")
    assert _run(["gc", "--yes", "--no-sync"], capsys)[0] in (0, 1)
    assert (victim / "manifest.json").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\x00b"], ids=ascii)
def test_delete_paths_stay_inside_the_snapshots_folder(name: str) -> None:
    with pytest.raises(UnsafePath):
        snapshot_folder("/runs/alice/p/1", name)
    assert not is_listed_name(name)


def test_local_remove_tree_refuses_links_and_other_folders(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    (root / "real").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    files = LocalFiles()
    for path, inside in (
        (root / "link", root),
        (outside, root),
        (root / "real", tmp_path),
        (root / ".." / "outside", root),
    ):
        with pytest.raises(BackendError, match="refusing to delete"):
            files.remove_tree(str(path), inside=str(inside))
    assert outside.exists() and (root / "real").exists()


def test_model_pull_copies_and_verifies(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _make_session(workspace, 2)
    code, _, _ = _run(["model", "pull", record.name, "step-1", str(tmp_path)], capsys)
    assert code == 0
    assert (tmp_path / "step-1" / "model.bin").read_bytes() == b"x" * 1000
    code, _, err = _run(["model", "pull", record.name, "step-1", str(tmp_path)], capsys)
    assert code == 2 and "exists" in err


def test_model_du_sums_per_session_and_project(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_session(workspace, 2)
    _make_session(workspace, 3, project="other")
    _, out, _ = _run(["model", "du", "--json"], capsys)
    usage = {item["session"]: item for item in json.loads(out)}
    assert (usage["gc/1"]["snapshots"], usage["gc/1"]["bytes"]) == (2, 2000)
    assert usage["other/1"]["bytes"] == 3000
    _, out, _ = _run(["model", "du"], capsys)
    assert "(all)" in out and "4.9 KiB" in out


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``crontab`` on PATH that keeps its table in a file (never the machine's crontab)."""
    table = tmp_path / "crontab.txt"
    table.write_text("MAILTO=me\n5 * * * * backup.sh\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "crontab"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {table}; else cat > {table}; fi\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return table


def test_install_cron_adds_one_line_and_keeps_the_others(
    nsml_env: Path, fake_crontab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["gc", "--install-cron", "0 3 * * *"], capsys)[0] == 0
    code, out, _ = _run(["gc", "--install-cron", "@daily"], capsys)
    assert code == 0 and out.startswith("replaced")
    lines = fake_crontab.read_text().splitlines()
    assert lines[:2] == ["MAILTO=me", "5 * * * * backup.sh"]
    [line] = [entry for entry in lines if entry.endswith("# nsml-hpc gc")]
    assert line.startswith("@daily ")
    assert "-m nsml_hpc gc --cron" in line
    assert f"NSML_HPC_CATALOG=sqlite:///{nsml_env / 'catalog.db'}" in line
    code, out, _ = _run(["gc", "--install-cron", "0 3 * * *", "--print"], capsys)
    assert out.startswith("0 3 * * * ") and fake_crontab.read_text().count("nsml-hpc gc") == 1


def test_scrontab_entry_runs_the_crontab_lines_command(
    workspace: Workspace,
    nsml_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian 12's Slurm 22.05 client has no scrontab: the entry is checked here by its
    command being the crontab line's (as cron hands it to sh: ``\\%`` back to ``%``) and by
    that command, run by sh and bash with an empty environment, running gc."""
    record = _make_session(workspace, 4)
    config = nsml_env / "100%" / "config.toml"  # a % that cron must see escaped, sh not
    config.parent.mkdir()
    config.write_text("[gc]\nkeep_last = 1\n")
    monkeypatch.setenv("NSML_HPC_CONFIG", str(config))
    code, crontab, _ = _run(["gc", "--install-cron", "0 3 * * *", "--print"], capsys)
    assert code == 0
    code, scrontab, err = _run(
        ["gc", "--install-cron", "0 3 * * *", "--print", "--scrontab"], capsys
    )
    assert code == 0, err
    lines = scrontab.splitlines()
    assert lines[0].startswith("# nsml-hpc gc")
    assert lines[1:3] == ["#SCRON --time=00:30:00", "#SCRON --job-name=nsml-hpc-gc"]
    assert len(lines) == 4 and lines[3].startswith("0 3 * * * ")
    scron_command = lines[3].removeprefix("0 3 * * * ")
    cron_command = crontab.strip().removeprefix("0 3 * * * ").removesuffix(" # nsml-hpc gc")
    assert "\\%" in cron_command and "\\%" not in scron_command
    assert cron_command.replace("\\%", "%") == scron_command  # the same words reach sh
    assert "NSML_HPC_CATALOG=" in scron_command and scron_command.endswith(" gc --cron")

    for shell in ("bash", "sh"):  # scrontab's batch script is #!/bin/sh
        done = subprocess.run(
            ["env", "-i", shell, "-c", scron_command],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=nsml_env,
        )
        assert done.returncode == 0 and done.stdout == "", done.stderr
    assert _consistent(workspace, record) == {"step-3"}
    log = (nsml_env / "xdg-data" / "nsml-hpc" / "gc.log").read_text()
    assert "deleted gc/1:step-0" in log and "deleted 3 snapshot(s)" in log


@pytest.mark.parametrize(
    "argv",
    [
        ["gc", "--scrontab"],
        ["gc", "--install-cron", "0 3 * * *", "--scrontab"],
        ["gc", "--yes", "--scrontab"],
    ],
)
def test_scrontab_only_prints(
    nsml_env: Path, fake_crontab: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = fake_crontab.read_text()
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "nsml-hpc: error: --scrontab prints the entry for scrontab -e: use it with "
        "--install-cron SCHEDULE --print (nsml-hpc never edits your scrontab)"
    ]
    assert fake_crontab.read_text() == before
