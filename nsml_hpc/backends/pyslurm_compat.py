"""The one place where pyslurm releases differ: what the pyslurm backend needs, in the names
of whichever pyslurm is installed (22.5.x for the sandbox's Slurm 22.05; 25.11.x on PyPI).

Differences found by reading both releases' sources (tags v22.5.3 and v25.11.2) and running
22.5.3 against the sandbox. Each is decided once, by :func:`detect_features`, from the module
itself (an attribute that exists) or, where the difference is inside compiled code, from its
version:

1. ``--signal`` (the warning before the time limit or a preemption): pyslurm before 24.5
   never applies ``JobSubmitDescription.signal`` (``_set_signal`` exists but
   ``_create_job_submit_desc`` does not call it), so the job would get no warning. There the
   submission goes through a subclass that calls it after building the description.
2. MaxArraySize: ``pyslurm.slurmctld.Config.load().max_array_size`` from 25.5 on; up to 24.5
   only the old dictionary API has it (``pyslurm.config().get()["max_array_sz"]``); 24.11 has
   neither (the backend then asks ``scontrol``).
3. GPUs in use per node: before 23.11 ``Nodes.load()`` asks slurmctld without
   ``SHOW_DETAIL``, so ``Node.allocated_gres`` is always empty and a partly used node says
   ``ALLOCATED``; from 23.11 ``Node.allocated_gres`` comes from ``allocated_tres`` (and 25.11
   says ``MIXED``). Without ``Node.allocated_tres`` the old ``pyslurm.node().get()`` is used
   (it asks with ``SHOW_DETAIL``: ``gres_used`` like ``gpu:3``, and ``MIXED``); it is gone
   from 25.5 on.

Shared by both (so not switched on): ``submit()`` returns the job id as an int; a signal in a
``signal`` dict must be a number (25.11 does not convert names there, 22.5 does not accept
``USR2`` without ``SIG``); a time limit of plain minutes must be an int (a digit string
reaches C as a string: ``TypeError``); ``load_sbatch_options`` cannot be used at all
(``--partition`` maps to a ``partition`` attribute that does not exist: ``AttributeError``),
see :mod:`nsml_hpc.backends.pyslurm_submit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nsml_hpc.slurm.gres import gres_text
from nsml_hpc.slurm.version import major_minor

SIGNAL_APPLIED_SINCE = (24, 5)  # first pyslurm whose JobSubmitDescription applies ``signal``


@dataclass(frozen=True)
class Features:
    """How the installed pyslurm does the things that differ between releases."""

    applies_signal: bool  # JobSubmitDescription applies ``signal`` by itself
    array_size_from: str | None  # "config" (slurmctld.Config), "legacy" (pyslurm.config), None
    nodes_from: str  # "objects" (Nodes.load with allocated_tres) or "legacy" (pyslurm.node)


def detect_features(module: Any, version: str) -> Features:
    """Decide every difference for ``module`` (pyslurm, or anything shaped like it)."""
    slurmctld_config = getattr(getattr(module, "slurmctld", None), "Config", None)
    if hasattr(slurmctld_config, "max_array_size"):
        array_size_from: str | None = "config"
    elif hasattr(module, "config"):
        array_size_from = "legacy"
    else:
        array_size_from = None
    release = major_minor(version) or (0, 0)
    return Features(
        applies_signal=release >= SIGNAL_APPLIED_SINCE,
        array_size_from=array_size_from,
        nodes_from="objects" if hasattr(module.Node, "allocated_tres") else "legacy",
    )


@dataclass(frozen=True)
class NodeView:
    """One node as the GPU view needs it, whichever API it came from."""

    name: str
    partitions: tuple[str, ...]
    state: str
    cpus_allocated: int
    cpus_total: int
    gres: str  # configured, as sinfo prints it: ``gpu:4``, ``gpu:a100:2``
    gres_used: str  # in use: ``gpu:3``, ``gpu:a100:1(IDX:0)``


def node_state(state: str, cpus_allocated: int, cpus_total: int) -> str:
    """sinfo's word for a node: a partly allocated node is ``mixed`` (22.5 says ALLOCATED)."""
    text = state.strip().lower()
    if text == "allocated" and 0 < cpus_allocated < cpus_total:
        return "mixed"
    return text


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def node_from_object(node: Any) -> NodeView:
    """A ``pyslurm.Node`` (25.11: ``allocated_gres`` from ``allocated_tres``)."""
    used, total = _int(node.allocated_cpus), _int(node.total_cpus)
    return NodeView(
        name=str(node.name),
        partitions=tuple(node.partitions or ()),
        state=node_state(str(node.state), used, total),
        cpus_allocated=used,
        cpus_total=total,
        gres=gres_text(node.configured_gres),
        gres_used=gres_text(node.allocated_gres),
    )


def node_from_legacy(name: str, node: dict[str, Any]) -> NodeView:
    """One value of the old ``pyslurm.node().get()`` dictionary."""
    used, total = _int(node.get("alloc_cpus")), _int(node.get("cpus"))
    return NodeView(
        name=str(node.get("name") or name),
        partitions=tuple(node.get("partitions") or ()),
        state=node_state(str(node.get("state") or ""), used, total),
        cpus_allocated=used,
        cpus_total=total,
        gres=gres_text(node.get("gres")),
        gres_used=gres_text(node.get("gres_used")),
    )


def submit_class(module: Any, features: Features) -> Any:
    """``JobSubmitDescription``, or where ``signal`` is ignored a subclass that applies it."""
    base = module.JobSubmitDescription
    if features.applies_signal:
        return base

    class SignalAppliedDescription(base):  # type: ignore[misc, valid-type]
        def _create_job_submit_desc(self, is_update: bool = False) -> None:
            super()._create_job_submit_desc(is_update)
            self._set_signal()  # does nothing when no signal was asked for

    return SignalAppliedDescription


class PyslurmApi:
    """Every pyslurm call the backend makes, in the installed release's names."""

    def __init__(self, module: Any, version: str) -> None:
        self.module = module
        self.version = version
        self.features = detect_features(module, version)
        # RPCError and its base; the old dictionary API (legacy above) raises ValueError.
        self.errors: tuple[type[Exception], ...] = (module.PyslurmError, ValueError)
        self._description = submit_class(module, self.features)

    def submit(self, fields: dict[str, Any]) -> int:
        return int(self._description(**fields).submit())

    def accounting_jobs(self, ids: list[int], since: int) -> list[Any]:
        """ONE ``db.Jobs.load``: the accounting records of ``ids`` since ``since``."""
        db = self.module.db
        return list(db.Jobs.load(db.JobFilter(ids=ids, start_time=since)).values())

    def queue_jobs(self) -> list[Any]:
        """ONE ``Jobs.load``: every job slurmctld knows."""
        return list(self.module.Jobs.load().values())

    def cancel(self, job_id: int) -> None:
        self.module.Job(job_id).cancel()

    def partitions(self) -> list[tuple[str, bool]]:
        """(name, is the default) of every partition."""
        loaded = self.module.Partitions.load()
        return [(str(part.name), bool(part.is_default)) for part in loaded.values()]

    def nodes(self) -> list[NodeView]:
        if self.features.nodes_from == "objects":
            return [node_from_object(node) for node in self.module.Nodes.load().values()]
        loaded: dict[str, dict[str, Any]] = self.module.node().get() or {}
        return [node_from_legacy(name, node) for name, node in loaded.items()]

    def max_array_size(self) -> int | None:
        """MaxArraySize, or None when this pyslurm cannot read it."""
        readers: dict[str, Callable[[], Any]] = {
            "config": lambda: self.module.slurmctld.Config.load().max_array_size,
            "legacy": lambda: self.module.config().get()["max_array_sz"],
        }
        if self.features.array_size_from is None:
            return None
        return int(readers[self.features.array_size_from]())
