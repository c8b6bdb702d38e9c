"""One test per difference between pyslurm releases (nsml_hpc/backends/pyslurm_compat.py),
decided on module shapes that copy the two releases' class attributes (read from the v22.5.3
and v25.11.2 sources), plus the pure mappings both paths share. That each 22.5 path works
against the real Slurm is shown in tests/slurm/test_pyslurm_api.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from nsml_hpc.backends.pyslurm_backend import PyslurmBackend
from nsml_hpc.backends.pyslurm_compat import (
    PyslurmApi,
    detect_features,
    node_from_legacy,
    node_from_object,
    node_state,
    submit_class,
)
from nsml_hpc.slurm.gres import gres_text


class _Description:
    """Stands in for JobSubmitDescription: records what its build step applied."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        self.applied: list[str] = []

    def _create_job_submit_desc(self, is_update: bool = False) -> None:
        self.applied.append("description")

    def _set_signal(self) -> None:
        self.applied.append("signal")

    def submit(self) -> int:
        self._create_job_submit_desc()
        return 7


def _pyslurm_22_5() -> SimpleNamespace:
    """The attributes pyslurm 22.5.3 has where the releases differ."""
    return SimpleNamespace(
        __version__="22.5.3",
        JobSubmitDescription=_Description,
        Node=type("Node", (), {"allocated_gres": None}),  # no allocated_tres
        slurmctld=SimpleNamespace(Config=type("Config", (), {"cluster": None})),
        config=object,  # the old dictionary API
        node=object,
        PyslurmError=RuntimeError,
    )


def _pyslurm_25_11() -> SimpleNamespace:
    return SimpleNamespace(
        __version__="25.11.2",
        JobSubmitDescription=_Description,
        Node=type("Node", (), {"allocated_gres": None, "allocated_tres": None}),
        slurmctld=SimpleNamespace(Config=type("Config", (), {"max_array_size": None})),
        PyslurmError=RuntimeError,
    )


def _pyslurm_24_11() -> SimpleNamespace:
    """24.11: the old API is gone and Config has no max_array_size yet."""
    module = _pyslurm_25_11()
    module.slurmctld = SimpleNamespace(Config=type("Config", (), {"cluster": None}))
    return module


# 1. --signal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "applies"),
    [("22.5.3", False), ("23.11.1", False), ("24.5.0", True), ("25.11.2", True)],
)
def test_which_pyslurm_applies_the_signal_of_a_job_by_itself(version, applies):
    assert detect_features(_pyslurm_25_11(), version).applies_signal is applies


def test_before_24_5_the_submission_applies_the_signal_itself():
    old = _pyslurm_22_5()
    description = submit_class(old, detect_features(old, "22.5.3"))(signal={"signal": 12})
    assert description.submit() == 7
    assert description.applied == ["description", "signal"]
    new = _pyslurm_25_11()
    assert submit_class(new, detect_features(new, "25.11.2")) is _Description


# 2. MaxArraySize -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "version", "source"),
    [
        (_pyslurm_22_5, "22.5.3", "legacy"),
        (_pyslurm_24_11, "24.11.0", None),
        (_pyslurm_25_11, "25.11.2", "config"),
    ],
)
def test_where_max_array_size_comes_from(module, version, source):
    assert detect_features(module(), version).array_size_from == source


def test_max_array_size_is_read_through_the_api_this_pyslurm_has():
    old = _pyslurm_22_5()
    old.config = lambda: SimpleNamespace(get=lambda: {"max_array_sz": 1001})
    assert PyslurmApi(old, "22.5.3").max_array_size() == 1001
    new = _pyslurm_25_11()
    loaded = SimpleNamespace(max_array_size=4000)
    new.slurmctld.Config.load = staticmethod(lambda: loaded)
    assert PyslurmApi(new, "25.11.2").max_array_size() == 4000
    assert PyslurmApi(_pyslurm_24_11(), "24.11.0").max_array_size() is None


# 3. GPUs in use per node ---------------------------------------------------------------------


def test_which_node_api_knows_the_gpus_in_use():
    assert detect_features(_pyslurm_22_5(), "22.5.3").nodes_from == "legacy"
    assert detect_features(_pyslurm_25_11(), "25.11.2").nodes_from == "objects"


def test_a_legacy_node_dictionary_as_22_5_gave_it_on_the_sandbox():
    node = node_from_legacy(
        "vm",
        {
            "name": "vm",
            "state": "MIXED",
            "gres": ["gpu:4"],
            "gres_used": ["gpu:3"],
            "alloc_cpus": 1,
            "cpus": 8,
            "partitions": ["small", "debug"],
        },
    )
    assert (node.name, node.partitions, node.state, node.gres, node.gres_used) == (
        "vm",
        ("small", "debug"),
        "mixed",
        "gpu:4",
        "gpu:3",
    )
    assert (node.cpus_allocated, node.cpus_total) == (1, 8)


def test_a_25_11_node_object_maps_the_same_way():
    node = node_from_object(
        SimpleNamespace(
            name="g01",
            partitions=["gpu"],
            state="MIXED",
            allocated_cpus=8,
            total_cpus=64,
            configured_gres={"gpu:a100": 4},
            allocated_gres={"gpu:a100": 3},
        )
    )
    assert (node.state, node.gres, node.gres_used) == ("mixed", "gpu:a100:4", "gpu:a100:3")


@pytest.mark.parametrize(
    ("state", "used", "total", "word"),
    [
        ("ALLOCATED", 3, 8, "mixed"),  # what 22.5's Node objects say for a partly used node
        ("ALLOCATED", 8, 8, "allocated"),
        ("IDLE", 0, 8, "idle"),
        ("IDLE+DRAIN", 0, 8, "idle+drain"),
    ],
)
def test_node_states_read_as_sinfo_words(state, used, total, word):
    assert node_state(state, used, total) == word


@pytest.mark.parametrize(
    ("gres", "text"),
    [
        ({"gpu": 4}, "gpu:4"),
        ({"gpu:a100": {"count": 2, "indexes": "0-1"}}, "gpu:a100:2"),
        (["gpu:3"], "gpu:3"),
        ("gpu:2", "gpu:2"),
        (None, ""),
        ({}, ""),
    ],
)
def test_gres_in_any_of_pyslurms_shapes_reads_as_sinfo_text(gres, text):
    assert gres_text(gres) == text


# The backend over a 25.11-shaped module: nodes, partitions and the queue --------------------


class _RPCError(Exception):
    pass


def _fake_25_11() -> Any:
    node = SimpleNamespace(
        name="g01",
        partitions=["gpu", "long"],
        state="MIXED",
        allocated_cpus=8,
        total_cpus=64,
        configured_gres={"gpu:a100": 4},
        allocated_gres={"gpu:a100": 3},
    )
    partitions = {
        "gpu": SimpleNamespace(name="gpu", is_default=True),
        "long": SimpleNamespace(name="long", is_default=False),
    }
    jobs = {
        5: SimpleNamespace(
            id=5,
            user_name="alice",
            state="RUNNING",
            state_reason="None",
            partition="gpu",
            gres_per_node={"gpu": 2},
            run_time=3725,
            time_limit=60,
            num_nodes=1,
            submit_time=1_700_000_000,
            start_time=1_700_000_010,
            allocated_nodes="g01",
            name="train",
            array_id=None,
        ),
        6: SimpleNamespace(id=6, user_name="bob", state="PENDING"),
    }
    module = _pyslurm_25_11()
    module.PyslurmError = _RPCError
    module.Nodes = SimpleNamespace(load=lambda: {"g01": node})
    module.Partitions = SimpleNamespace(load=lambda: partitions)
    module.Jobs = SimpleNamespace(load=lambda: jobs)
    return module


def test_pyslurm_nodes_partitions_and_queue_map_to_the_shared_records():
    backend = PyslurmBackend("hpc", api=PyslurmApi(_fake_25_11(), "25.11.2"))
    nodes = backend.cluster_gpus()
    assert [(n.partition, n.is_default, n.gpus_total, n.gpus_used) for n in nodes] == [
        ("gpu", True, 4, 3),
        ("long", False, 4, 3),
    ]
    assert nodes[0].gpu_types == ("a100",)
    assert backend.partitions() == ["gpu", "long"]
    (job,) = backend.user_queue("alice")
    assert (job.job_id, job.state, job.gpus, job.time_used, job.time_limit, job.where) == (
        "5",
        "RUNNING",
        2,
        "1:02:05",
        "1:00:00",
        "g01",
    )
