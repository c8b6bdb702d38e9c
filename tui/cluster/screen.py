"""The cluster: GPUs per partition (total / allocated / idle, with a bar) and the user's own
queue, from :meth:`nsml_hpc.workspace.Workspace.cluster_overview` (one sinfo + one squeue per
Slurm floor, shared by every open view through the catalog and spent from the user's hourly
Slurm allowance). Refreshed in a worker every Slurm floor while the screen is open; ``r`` (and
``n``, another cluster) asks as soon as the action floor allows. The info line says how old the
data is, and why it was not renewed when the allowance is short; a failed query keeps the last
answer and says so in the status line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from nsml_hpc.clusters.info import ClusterOverview
from nsml_hpc.errors import NsmlError
from nsml_hpc.formatting import format_time
from nsml_hpc.slurm.sinfo import PartitionGpus

from ..app import nsml_app
from ..widgets.status_line import StatusLine
from ..widgets.styling import ago_text, state_style

BAR_WIDTH = 20


def gpu_bar(partition: PartitionGpus, width: int = BAR_WIDTH) -> Text:
    """``████▒▒░░░░``: allocated, unavailable, idle GPUs of a partition."""
    total = partition.gpus_total
    if total <= 0:
        return Text("no GPUs", "dim")
    used = round(width * partition.gpus_allocated / total)
    down = round(width * partition.gpus_unavailable / total)
    idle = max(width - used - down, 0)
    bar = Text()
    bar.append("█" * used, "red")
    bar.append("▒" * down, "dim")
    bar.append("░" * idle, "green")
    return bar


class ClusterScreen(Screen[None]):
    CSS_PATH = "cluster.tcss"
    TITLE = "cluster"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("n", "next_cluster", "Next cluster", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Fetched(Message):
        overview: ClusterOverview | None
        clusters: list[str]
        error: str | None = None

    def __init__(self, cluster: str | None = None) -> None:
        super().__init__()
        self.cluster = cluster
        self.clusters: list[str] = []
        self.overview: ClusterOverview | None = None

    def compose(self) -> ComposeResult:
        yield Static("cluster", id="title", classes="title-bar")
        with Vertical(id="cluster-body"):
            yield Static("", id="cluster-info")
            yield Static("GPUs per partition", classes="table-title")
            yield DataTable[Text](id="partitions", cursor_type="row", zebra_stripes=True)
            yield Static("Your queue", classes="table-title", id="queue-title")
            yield DataTable[Text](id="queue", cursor_type="row", zebra_stripes=True)
        yield StatusLine()
        yield Footer()

    def on_mount(self) -> None:
        partitions: DataTable[Text] = self.query_one("#partitions", DataTable)
        partitions.add_columns(
            "partition",
            "nodes",
            "GPUs",
            "alloc",
            "idle",
            "down",
            "use",
            "CPUs",
            "types",
        )
        queue: DataTable[Text] = self.query_one("#queue", DataTable)
        queue.add_columns(
            "job", "name", "state", "reason / nodes", "partition", "GPUs", "time", "limit", "start"
        )
        app = nsml_app(self)
        # sinfo + squeue are Slurm queries: on the Slurm clock (opening the screen fetches)
        interval = max(app.workspace.slurm_policy().floor_seconds, app.sync_interval)
        self.set_interval(interval, self._fetch)
        self._fetch()

    def _fetch(self, *, explicit: bool = False) -> None:
        self._refresh_worker(self.cluster, explicit)

    @work(thread=True, exclusive=True, group="cluster", name="cluster-overview")
    def _refresh_worker(self, cluster: str | None, explicit: bool = False) -> None:
        app = nsml_app(self)
        try:
            clusters = sorted(set(app.workspace.session_clusters()) | {"local"})
            chosen = cluster or ("local" if "local" in clusters else clusters[0])
            overview = app.workspace.cluster_overview(
                chosen, user=app.user, now=app.clock(), explicit=explicit
            )
        except NsmlError as exc:
            self.post_message(self.Fetched(None, [], str(exc)))
            return
        self.post_message(self.Fetched(overview, clusters))

    def on_cluster_screen_fetched(self, message: Fetched) -> None:
        app = nsml_app(self)
        overview = message.overview
        if overview is None:
            self.notify(message.error or "cannot read the cluster", severity="error")
            return
        self.overview, self.clusters = overview, message.clusters
        self.cluster = overview.cluster
        app.report_cluster_health(overview.cluster, overview.error)
        fetched = (
            f"data from {ago_text(app.clock() - overview.fetched_at)}"
            if overview.fetched_at
            else "no answer yet"
        )
        if overview.held_back:
            fetched += f" ({overview.held_back})"
        others = (
            f" · n: next of {len(message.clusters)} clusters" if len(message.clusters) > 1 else ""
        )
        self.query_one("#title", Static).update(
            f"nsml-hpc · cluster {overview.cluster} · user {overview.user}"
        )
        self.query_one("#cluster-info", Static).update(f"{fetched}{others}")
        self._fill(overview)

    def _fill(self, overview: ClusterOverview) -> None:
        partitions: DataTable[Text] = self.query_one("#partitions", DataTable)
        partitions.clear()
        for part in overview.partitions:
            name = Text(part.name + (" (default)" if part.is_default else ""), "bold")
            partitions.add_row(
                name,
                Text(f"{part.nodes_usable}/{part.nodes}"),
                Text(str(part.gpus_total)),
                Text(str(part.gpus_allocated), "red" if part.gpus_allocated else ""),
                Text(str(part.gpus_idle), "green" if part.gpus_idle else "dim"),
                Text(str(part.gpus_unavailable), "dim"),
                gpu_bar(part),
                Text(f"{part.cpus_allocated}/{part.cpus_total}"),
                Text(", ".join(part.gpu_types) or "-", "dim"),
            )
        if not overview.partitions:
            partitions.add_row(Text("no answer from sinfo yet", "dim"), *[Text("")] * 8)
        queue: DataTable[Text] = self.query_one("#queue", DataTable)
        queue.clear()
        for job in overview.queue:
            queue.add_row(
                Text(job.job_id),
                Text(job.name),
                Text(job.state, state_style(job.state)),
                Text(job.reason if job.state == "PENDING" and job.reason else job.where),
                Text(job.partition),
                Text(str(job.gpus)),
                Text(job.time_used),
                Text(job.time_limit),
                Text(format_time(job.start_at) if job.state == "PENDING" else "-", "dim"),
            )
        self.query_one("#queue-title", Static).update(
            f"Your queue ({len(overview.queue)} job{'s' if len(overview.queue) != 1 else ''})"
        )

    def on_unmount(self) -> None:
        if self.cluster is not None:  # only this screen asks sinfo/squeue
            nsml_app(self).report_cluster_health(self.cluster, None)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self._fetch(explicit=True)

    def action_next_cluster(self) -> None:
        if len(self.clusters) > 1 and self.cluster in self.clusters:
            index = (self.clusters.index(self.cluster) + 1) % len(self.clusters)
            self.cluster = self.clusters[index]
            self._fetch(explicit=True)
