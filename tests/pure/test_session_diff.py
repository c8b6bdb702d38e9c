"""Session diff: changed fields, and the unified diff of two code snapshots."""

from __future__ import annotations

from pathlib import Path

from nsml_hpc.sessions.diff import code_diff, field_changes


def test_changed_nested_fields_are_listed_with_both_values() -> None:
    left = {"resources": {"gpus": 2, "time": None}, "project": "p", "memo": "a"}
    right = {"resources": {"gpus": 4, "time": "1:00:00"}, "project": "p"}
    changes = [(c.key, c.left, c.right) for c in field_changes(left, right)]
    assert changes == [
        ("memo", "a", None),
        ("resources.gpus", 2, 4),
        ("resources.time", None, "1:00:00"),
    ]


def test_code_diff_covers_changed_added_removed_and_binary_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "pkg").mkdir(parents=True)
    (a / "train.py").write_text("lr = 0.1\nprint(lr)\n")
    (b / "train.py").write_text("lr = 0.01\nprint(lr)\n")
    (a / "old.txt").write_text("gone\n")
    (b / "pkg" / "new.py").write_text("x = 1\n")
    (a / "same.py").write_text("same\n")
    (b / "same.py").write_text("same\n")
    (a / "w.bin").write_bytes(b"\0\1")
    (b / "w.bin").write_bytes(b"\0\2")
    text = "".join(code_diff(a, b, "p/1", "p/2"))
    assert "-lr = 0.1\n+lr = 0.01\n" in text
    assert "--- p/1/old.txt\n+++ /dev/null" in text
    assert "--- /dev/null\n+++ p/2/pkg/new.py" in text
    assert "same.py" not in text
    assert "Binary or large files p/1/w.bin and p/2/w.bin differ" in text
