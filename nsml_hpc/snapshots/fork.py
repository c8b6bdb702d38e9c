"""``nsml-hpc fork``: a new session from a parent's code snapshot and one of its snapshots,
with changed hyperparameters and resources.

The child's arguments are the parent's with each ``--set KEY=VALUE`` replacing that flag's
value where it stands (``--lr 0.1`` -> ``--lr 0.01``, ``--lr=0.1`` -> ``--lr=0.01``; a switch
``--amp`` takes ``true``/``false``); ``--add KEY=VALUE`` appends a flag the parent did not have.
The child's ``session.json`` names the snapshot (``fork``), and its job wrapper hands it to the
script as ``nsml_hpc.session.resume_from``. The lineage row and the snapshot's protection from
gc are written in one transaction before sbatch, so a gc running at that moment can never
delete the snapshot the child will start from.

The child starts from the parent's *current* hyperparameters: values changed while the parent
ran (``nsml-hpc set``, the changes its job took) replace those of its command line, and values
the parent only got through ``set --add`` reach the child as ``hparam()`` values
(``session.json`` ``live_hyperparameters``), not as new flags its script may not accept. A
checkpoint file the parent's training code wrote itself (a found checkpoint) is handed over as
a path too. The child's code is the code the parent was submitted with (the files of its code
manifest), never what the parent's job wrote into its folder (checkpoints, logs).
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from nsml_hpc.catalog.hparam_events import taken_changes
from nsml_hpc.catalog.ownership import check_owner
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.catalog.snapshot_models import LineageRecord, SnapshotRecord
from nsml_hpc.catalog.snapshots import (
    found_records,
    protect_for_fork,
    snapshots_of,
)
from nsml_hpc.code.selection import collect_code
from nsml_hpc.code.upload import parse_manifest
from nsml_hpc.config.identity import current_user
from nsml_hpc.context import Context
from nsml_hpc.errors import NotFoundError, NsmlError, SpecError
from nsml_hpc.job.hparams import HParamValue, coerce, parse_hyperparameters
from nsml_hpc.job.layout import CODE_DIR, CODE_MANIFEST, PRIVATE_DIR, SESSION_FILE
from nsml_hpc.job.live_hparams import LIVE_KEY
from nsml_hpc.job.snapshot_format import Manifest, choose, parse_selector
from nsml_hpc.job.spec import MAX_ARG_BYTES, Preemption, Resources, SessionSpec, validate_spec
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.snapshots.views import snapshot_metrics
from nsml_hpc.submit.create import Prepared, Submitted, dry_run, run_dir_mode_document, submit
from nsml_hpc.submit.fit import check_fits
from nsml_hpc.submit.interpreter import job_profile
from nsml_hpc.submit.placement import AUTO, place
from nsml_hpc.submit.rundir import read_json

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_FLAG = re.compile(r"^(--?)([A-Za-z_][A-Za-z0-9_.-]*)(?:=(.*))?$", re.DOTALL)
_NUMBER_LIKE = re.compile(r"^-?([0-9]|\.[0-9])")
RESOURCE_KEYS = frozenset(
    {"gpus", "nodes", "cpus_per_gpu", "mem", "time", "partition", "account", "qos", "constraint"}
)
MAX_CODE_BYTES = 1 << 40  # the parent's code passed the size guard when it was submitted


@dataclass(frozen=True)
class Change:
    key: str
    old: str | None  # None: the flag is new
    new: str


def parse_assignment(flag: str, text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (key, value), refusing keys a command line cannot hold."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise SpecError(f"{flag} takes KEY=VALUE, got {text!r}")
    if not KEY.fullmatch(key):
        raise SpecError(
            f"{flag} {text!r}: {key!r} is not a hyperparameter name (letters, digits, '_', "
            "'.', '-'; not starting with a digit or '-')"
        )
    if "\x00" in value or len(value.encode("utf-8", "surrogateescape")) > MAX_ARG_BYTES:
        raise SpecError(f"{flag} {key}: the value holds a NUL byte or is too long")
    return key, value


def _norm(key: str) -> str:
    return key.replace("-", "_")


def _is_value(word: str) -> bool:
    return not word.startswith("-") or bool(_NUMBER_LIKE.match(word))


def apply_overrides(
    args: list[str], sets: list[tuple[str, str]], adds: list[tuple[str, str]]
) -> tuple[list[str], list[Change]]:
    """The parent's argument list with ``sets`` replaced in place and ``adds`` appended
    (before a ``--``). Pure; raises :class:`SpecError` for keys that do not fit."""
    seen: set[str] = set()
    for key, _ in [*sets, *adds]:
        if _norm(key) in seen:
            raise SpecError(f"{key} is given twice")
        seen.add(_norm(key))
    words = list(args)
    changes: list[Change] = []
    known = parse_hyperparameters(words)
    for key, value in sets:
        if _norm(key) not in known:
            listed = ", ".join(sorted(known)) or "none"
            hint = (
                "use fork --" + key.replace("_", "-")
                if _norm(key) in RESOURCE_KEYS
                else (f"use --add {key}=VALUE to add it")
            )
            raise SpecError(f"the parent has no hyperparameter {key!r} (it has: {listed}); {hint}")
        words, old = _replace(words, _norm(key), value)
        changes.append(Change(key, old, value))
    for key, value in adds:
        if _norm(key) in known:
            raise SpecError(f"the parent already has {key!r}; use --set {key}=VALUE")
        if _norm(key) in RESOURCE_KEYS:
            raise SpecError(f"{key!r} is a resource; use fork --{key.replace('_', '-')}")
        end = words.index("--") if "--" in words else len(words)
        flag = [f"--{key}={value}"] if not _is_value(value) else [f"--{key}", value]
        words[end:end] = flag
        changes.append(Change(key, None, value))
    return words, changes


def _replace(words: list[str], key: str, value: str) -> tuple[list[str], str | None]:
    end = words.index("--") if "--" in words else len(words)
    out = list(words)
    old: str | None = None
    index = 0
    while index < end:
        match = _FLAG.match(out[index])
        if match is None or _norm(match.group(2)) != key:
            index += 1
            continue
        dashes, name, inline = match.groups()
        if inline is not None:
            old, out[index] = inline, f"{dashes}{name}={value}"
            index += 1
        elif index + 1 < end and _is_value(out[index + 1]):
            old = out[index + 1]
            if _is_value(value):
                out[index + 1] = value
            else:
                out[index : index + 2] = [f"{dashes}{name}={value}"]
                end -= 1
            index += 1 if not _is_value(value) else 2
        else:
            old = "true"
            lowered = value.lower()
            if lowered == "false":
                del out[index]
                end -= 1
            elif lowered == "true":
                index += 1
            else:
                raise SpecError(
                    f"--{name} is a switch in the parent's command line; set it to true or false"
                )
    return out, old


def parse_changes(text: str) -> dict[str, str]:
    """The TUI's fork form: ``lr=0.05 epochs=10`` or ``--lr 0.05 --epochs=10`` ->
    ``{"lr": "0.05", "epochs": "10"}``; a bare ``--amp`` is ``amp=true``."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SpecError(f"cannot read the changed hyperparameters: {exc}") from None
    changes: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-"):
            match = _FLAG.match(word)
            if match is None:
                raise SpecError(f"{word!r} is not a --name or --name=value flag")
            name, value = match.group(2), match.group(3)
            if value is None:
                following = words[index] if index < len(words) else None
                if following is not None and _is_value(following):
                    value, index = following, index + 1
                else:
                    value = "true"
        else:
            name, sep, value = word.partition("=")
            if not sep:
                raise SpecError(f"write a change as name=value or --name value, got {word!r}")
        if not KEY.fullmatch(name):
            raise SpecError(f"{name!r} is not a hyperparameter name")
        changes[name] = value
    return changes


def split_changes(
    parent_keys: Iterable[str], changes: dict[str, str]
) -> tuple[list[str], list[str]]:
    """``changes`` as ``--set`` texts (names the parent has, ``-``/``_`` alike) and ``--add``
    texts (new names), each ``KEY=VALUE``."""
    known = {_norm(key) for key in parent_keys}
    sets = [f"{key}={value}" for key, value in changes.items() if _norm(key) in known]
    adds = [f"{key}={value}" for key, value in changes.items() if _norm(key) not in known]
    return sets, adds


@dataclass(frozen=True)
class ForkRequest:
    parent: str
    snapshot: str = "latest"
    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)  # only the fields given
    preemption: dict[str, Any] = field(default_factory=dict)
    memo: str | None = None


@dataclass(frozen=True)
class Forked:
    submitted: Submitted | None
    script: str | None  # the rendered script of a dry run
    parent: str
    tag: str
    step: int | None
    changes: list[Change]
    placement: str | None = None  # how --partition auto chose


def _manifest_of(row: SnapshotRecord) -> Manifest:
    return Manifest(
        tag=row.tag,
        step=row.step,
        metrics=snapshot_metrics(row),
        files=(),
        created=row.created_at,
    )


def choose_snapshot(workspace: Context, name: str, selector: str) -> SnapshotRecord:
    """The parent's snapshot ``selector`` names, re-read from disk; damaged ones never."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    choice = parse_selector(selector, workspace.settings.metric_directions)
    files = workspace.backend_for(record.cluster).files
    damaged = refresh_session(
        workspace.catalog, files, record.id, name, record.run_dir, time.time()
    )
    if choice.kind == "tag" and choice.tag in damaged:
        raise NsmlError(f"snapshot {name}:{choice.tag} is damaged ({damaged[choice.tag]})")
    rows = [
        row
        for row in snapshots_of(workspace.catalog, [record.id])[record.id]
        if row.problem is None
    ]
    chosen = choose([_manifest_of(row) for row in rows], choice, name)
    return next(row for row in rows if row.tag == chosen.tag)


def _child_spec(
    parent: SessionSpec, request: ForkRequest, args: list[str], label: str
) -> SessionSpec:
    try:
        # A fork starts from a snapshot: what its parent waited for (--after) is over.
        resources = replace(parent.resources, **{"dependency": None, **request.resources})
        preemption = replace(parent.preemption, **request.preemption)
    except TypeError as exc:
        raise SpecError(f"unknown resource: {exc}") from exc
    return validate_spec(
        replace(
            parent,
            args=args,
            resources=resources if isinstance(resources, Resources) else parent.resources,
            preemption=preemption if isinstance(preemption, Preemption) else parent.preemption,
            memo=request.memo if request.memo is not None else f"fork of {label}",
            after=[],
        )
    )


def arg_text(value: HParamValue) -> str:
    """A value as the command line word that reads back as it (``true``, ``0.01``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _live_start(
    workspace: Context, parent_id: int, args: list[str], document: Any
) -> tuple[list[str], dict[str, HParamValue], list[Change]]:
    """The parent's command line with the values its job took while running, the values it
    only had through ``set --add`` (and its own live values, if it was a fork), and the
    changes that makes (shown, and recorded as the fork's overrides)."""
    on_line = parse_hyperparameters(args)
    live: dict[str, HParamValue] = {}
    if isinstance(document, dict) and isinstance(document.get(LIVE_KEY), dict):
        live = {
            str(k): v
            for k, v in document[LIVE_KEY].items()
            if isinstance(v, bool | int | float | str)
        }
    taken: dict[str, HParamValue] = {}
    for change in taken_changes(workspace.catalog, [parent_id])[parent_id]:
        taken.update(change.changes)
    sets = [
        (name, arg_text(value))
        for name, value in taken.items()
        if name in on_line and arg_text(on_line[name]) != arg_text(value)
    ]
    args, changes = apply_overrides(args, sets, [])
    for name, value in taken.items():
        if name not in on_line:
            if name in live and live[name] == value:
                continue
            changes.append(
                Change(name, arg_text(live[name]) if name in live else None, arg_text(value))
            )
            live[name] = value
    return args, live, changes


def fork_session(workspace: Context, request: ForkRequest, *, dry: bool = False) -> Forked:
    parent = get_session(workspace.catalog, request.parent)
    assert parent.id is not None
    # Forking protects the parent's snapshot from deletion (a change of the parent's rows),
    # so it is the parent's owner's (nsml_hpc.catalog.ownership).
    check_owner(workspace.catalog, parent, "fork from")
    sets = [parse_assignment("--set", text) for text in request.sets]
    adds = [parse_assignment("--add", text) for text in request.adds]
    parent_spec = SessionSpec.from_dict(json.loads(parent.spec_json))
    files = workspace.backend_for(parent.cluster).files
    document = read_json(files, f"{parent.run_dir}/{SESSION_FILE}")
    start_args, live, inherited = _live_start(workspace, parent.id, parent_spec.args, document)
    # A --set of a value the parent only had live changes that value (not a new flag).
    live_sets = [(key, value) for key, value in sets if _norm(key) in live]
    for key, value in live_sets:
        live[_norm(key)] = coerce(value)
    sets = [(key, value) for key, value in sets if _norm(key) not in live]
    args, changes = apply_overrides(start_args, sets, adds)
    changes = [
        *[c for c in inherited if c.key not in {_norm(change.key) for change in changes}],
        *changes,
        *[Change(key, None, value) for key, value in live_sets],
    ]
    row = choose_snapshot(workspace, request.parent, request.snapshot)
    assert row.id is not None
    link = found_records(workspace.catalog, [parent.id]).get(row.id)
    if link is not None and row.problem:
        raise NsmlError(
            f"{parent.name}:{row.tag} is {row.problem}; fork from it once it is written"
        )
    label = f"{parent.name}:{row.tag}"
    spec = _child_spec(parent_spec, request, args, label)
    backend = workspace.backend_for(spec.cluster)
    placement: str | None = None
    if spec.resources.partition == AUTO:
        placed = place(spec, backend)
        spec, placement = placed.spec, placed.explanation
    check_fits(spec, backend)  # a request the partition can never hold: refused, nothing made
    # A remote parent's code is on the cluster: it is copied here first (the child's upload
    # then sends only what the cluster's earlier snapshot of the project lacks).
    with tempfile.TemporaryDirectory(prefix="nsml-hpc-fork-") as scratch:
        code_dir = _parent_code(workspace, parent.cluster, parent.run_dir, parent.name, scratch)
        code = collect_code(code_dir, MAX_CODE_BYTES)
        uploaded = parse_manifest(
            read_json(files, f"{parent.run_dir}/{PRIVATE_DIR}/{CODE_MANIFEST}")
        )
        if uploaded:  # what the parent's job wrote into its folder is not code
            code = replace(code, files=[item for item in code.files if item.relative in uploaded])
        parent_code = document.get("code", {}) if isinstance(document, dict) else {}
        if not isinstance(parent_code, dict):
            parent_code = {}
        code = replace(
            code, git_commit=parent_code.get("git_commit"), git_dirty=parent_code.get("git_dirty")
        )
        snapshot_path = (
            f"{parent.run_dir}/{link.path}"
            if link is not None
            else f"{parent.run_dir}/snapshots/{row.tag}"
        )
        overrides = {change.key: change.new for change in changes}
        fork_info: dict[str, Any] = {
            "session": parent.name,
            "snapshot": row.tag,
            "snapshot_path": snapshot_path,
            "step": row.step,
            "created": row.created_at,
            "overrides": overrides,
        }
        if link is not None:
            fork_info.update(found=link.kind, bytes=row.bytes)
        extra: dict[str, Any] = {
            "fork": fork_info,
            **workspace.settings.metric_directions.to_document(),
            **run_dir_mode_document(workspace.settings),
        }
        if live:
            extra[LIVE_KEY] = live
        prepared = Prepared(
            spec=spec,
            code=code,
            profile=job_profile(
                workspace.settings.profile(spec.cluster), workspace.catalog, backend
            ),
            user=current_user(),
            extra=extra,
        )
        if dry:
            script = dry_run(prepared, workspace.catalog, workspace.settings, backend)
            return Forked(None, script, parent.name, row.tag, row.step, changes, placement)

        def record_lineage(child_id: int) -> None:
            with workspace.catalog.session() as db:
                if not protect_for_fork(db, row.id or 0):
                    raise NsmlError(f"{label} is being deleted; fork from another snapshot")
                db.add(
                    LineageRecord(
                        child_session_id=child_id,
                        parent_session_id=parent.id,
                        parent_name=parent.name,
                        parent_tag=row.tag,
                        parent_step=row.step,
                        parent_snapshot_path=snapshot_path,
                        overrides_json=json.dumps(overrides, sort_keys=True),
                        created_at=time.time(),
                    )
                )
            check = snapshot_path if link is not None else f"{snapshot_path}/manifest.json"
            if files.stat(check) is None:
                raise NotFoundError(f"{label} vanished from disk")

        try:
            done = submit(
                prepared,
                workspace.catalog,
                workspace.settings,
                backend,
                before_sbatch=record_lineage,
            )
        except BaseException:
            _unprotect_if_unused(workspace, row.id)
            raise
    return Forked(done, None, parent.name, row.tag, row.step, changes, placement)


def _parent_code(workspace: Context, cluster: str, run_dir: str, name: str, scratch: str) -> Path:
    """The folder holding the parent's code snapshot, on this machine."""
    code_dir = f"{run_dir}/code"
    files = workspace.backend_for(cluster).files
    info = files.stat(code_dir)
    if info is None or not info.is_dir:
        raise NotFoundError(f"the code snapshot of {name} is gone ({code_dir})")
    if not workspace.settings.profile(cluster).remote:
        return Path(code_dir)
    local = Path(scratch) / CODE_DIR
    files.copy_out(code_dir, local)
    return local


def _unprotect_if_unused(workspace: Context, snapshot_id: int) -> None:
    """A fork that failed leaves no protection behind (unless another fork uses it)."""
    with workspace.catalog.session() as db:
        row = db.get(SnapshotRecord, snapshot_id)
        if row is None:
            return
        used = db.exec(
            select(LineageRecord).where(
                LineageRecord.parent_session_id == row.session_id,
                LineageRecord.parent_tag == row.tag,
            )
        ).first()
        if used is None:
            db.execute(
                update(SnapshotRecord)
                .where(col(SnapshotRecord.id) == snapshot_id)
                .values(forked_from=False)
            )
