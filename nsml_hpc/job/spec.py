"""A session's validated specification: what to run, with which resources, where.

Every value that will reach an ``#SBATCH`` line or the job's shell is checked here, before
anything is created: bad input becomes one :class:`~nsml_hpc.errors.SpecError` and nothing else
happens. Rendering (``render.py``) quotes what it places in the shell on top of this.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from nsml_hpc.errors import SpecError
from nsml_hpc.job.duration import parse_duration
from nsml_hpc.job.hparams import HParamValue, parse_hyperparameters
from nsml_hpc.job.sbatch_options import option_name, validate_sbatch_arg
from nsml_hpc.job.text import has_control_characters as has_control_characters
from nsml_hpc.job.text import printable

EnvKind = Literal["setup", "module", "venv", "conda"]
# How the job starts the training script (docs/multi-node.md):
#   plain         once, on the first node (the script may call srun itself)
#   srun          srun starts --ntasks-per-node tasks (default 1) on every node, one rank each
#   srun-per-gpu  srun starts one task per GPU on every node, one rank each
#   torchrun      srun starts one torchrun per node; torchrun starts one process per GPU and
#                 finds the others through a c10d rendezvous at the first node
LAUNCH_MODES = ("plain", "srun", "srun-per-gpu", "torchrun")

PROJECT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}(,[A-Za-z0-9_.-]{1,128})*$")
CONSTRAINT = re.compile(r"^[A-Za-z0-9_.,&|()\[\]*:!-]{1,512}$")
MODULE_NAME = re.compile(r"^[A-Za-z0-9_./+-]{1,256}$")
MEMORY = re.compile(r"^([0-9]+)([KMGT]?)B?$", re.IGNORECASE)
GPU_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAIL_USER = re.compile(r"^[A-Za-z0-9_.+-]{1,128}(@[A-Za-z0-9.-]{1,253})?$")
MAIL_TYPES = (
    "NONE",
    "BEGIN",
    "END",
    "FAIL",
    "REQUEUE",
    "ALL",
    "INVALID_DEPEND",
    "STAGE_OUT",
    "TIME_LIMIT",
    "TIME_LIMIT_90",
    "TIME_LIMIT_80",
    "TIME_LIMIT_50",
    "ARRAY_TASKS",
)
DEPENDENCY_TYPES = ("after", "afterany", "afterburstbuffer", "aftercorr", "afternotok", "afterok")
_JOB_REF = r"[0-9]+(?:_[0-9]+)?(?:\+[0-9]+)?"
DEPENDENCY_ITEM = re.compile(
    rf"^(?:singleton|(?:{'|'.join(DEPENDENCY_TYPES)}):{_JOB_REF}(?::{_JOB_REF})*)$"
)
MAX_ARG_BYTES = 100_000  # Linux refuses a single argv word over 128 KiB at exec time
MAX_COUNT = 100_000
DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MAX_PATTERN_CHARS = 1000
X_AXIS_GROUPS = frozenset({"step", "epoch"})
METRIC_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class EnvStep:
    """One environment preparation step in the job, before the training script runs."""

    kind: EnvKind
    value: str


@dataclass(frozen=True)
class Resources:
    """What Slurm is asked for. ``None`` leaves the cluster's default.

    ``gpus`` is per node (``--gres=gpu[:gpu_type]:gpus`` on each of ``nodes``).
    ``dependency`` is Slurm's ``--dependency`` value (``--after`` sessions resolved to job
    ids). ``sbatch_args`` are further ``--name[=value]`` options, one per item, passed through.
    """

    gpus: int = 0
    nodes: int = 1
    cpus_per_gpu: int | None = None
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_type: str | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    exclusive: bool | None = None  # None: not said (the cluster profile's default, else shared)
    dependency: str | None = None
    reservation: str | None = None
    mail_type: str | None = None
    mail_user: str | None = None
    sbatch_args: list[str] = field(default_factory=list)

    @property
    def gpus_text(self) -> str:
        """``4``, ``a100:4``; ``2x a100:4`` for 4 GPUs on each of 2 nodes (views)."""
        per_node = f"{self.gpu_type}:{self.gpus}" if self.gpu_type else str(self.gpus)
        return per_node if self.nodes == 1 else f"{self.nodes}x {per_node}"


DEFAULT_GRACE_SECONDS = 120
DEFAULT_MAX_REQUEUES = 5
MAX_GRACE_SECONDS = 65_535  # Slurm's --signal time field is 16 bits


@dataclass(frozen=True)
class Preemption:
    """How a session survives preemption and its time limit: Slurm warns the job
    ``grace_seconds`` before the end (``--signal=B:USR2@grace``), the job saves a snapshot,
    and the wrapper requeues it (at most ``max_requeues`` times)."""

    grace_seconds: int | None = None  # None: 120 s, or a quarter of --time when shorter; 0: off
    requeue: bool = True
    max_requeues: int = DEFAULT_MAX_REQUEUES


@dataclass(frozen=True)
class DatasetUse:
    """A pushed dataset the session reads: ``submit --dataset NAME[:VERSION] [--stage]``.

    ``version`` and ``path`` (its ``data/`` folder on the cluster) are filled in at submit
    time, so the session.json of a job names exactly the version it reads."""

    name: str
    version: int | None = None  # None: the newest, resolved at submit
    stage: bool = False  # copy it to node-local scratch at job start
    path: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class SessionSpec:
    """Everything needed to render and submit one session."""

    project: str
    script: str  # path of the entry point, relative to the code snapshot
    args: list[str] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    environment: list[EnvStep] = field(default_factory=list)
    memo: str = ""
    cluster: str = "local"
    preemption: Preemption = field(default_factory=Preemption)
    launch: str = "plain"
    after: list[str] = field(default_factory=list)  # sessions resources.dependency waits for
    dataset: DatasetUse | None = None
    capture_stdout: bool = False  # metrics printed to the Slurm output become points
    stdout_pattern: str | None = None  # a regex with named groups, for other formats

    @property
    def hyperparameters(self) -> dict[str, HParamValue]:
        return parse_hyperparameters(self.args)

    @property
    def captures_stdout(self) -> bool:
        """Whether metrics printed to the Slurm output are captured (a pattern implies it)."""
        return self.capture_stdout or self.stdout_pattern is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionSpec:
        return cls(
            project=data["project"],
            script=data["script"],
            args=list(data.get("args", [])),
            resources=_resources_from_dict(data.get("resources", {})),
            environment=[EnvStep(**step) for step in data.get("environment", [])],
            memo=data.get("memo", ""),
            cluster=data.get("cluster", "local"),
            preemption=Preemption(**data.get("preemption", {})),
            launch=data.get("launch", "plain"),
            after=list(data.get("after", [])),
            dataset=DatasetUse(**data["dataset"]) if data.get("dataset") else None,
            capture_stdout=bool(data.get("capture_stdout", False)),
            stdout_pattern=data.get("stdout_pattern"),
        )


def _resources_from_dict(data: dict[str, Any]) -> Resources:
    values = dict(data)
    if "sbatch_args" in values:
        values["sbatch_args"] = list(values["sbatch_args"])
    return Resources(**values)


def validate_project(name: str) -> str:
    if not PROJECT_NAME.fullmatch(name) or ".." in name:
        raise SpecError(
            f"invalid project name {name!r}: use letters, digits, '-', '_' and '.' "
            "(at most 64, not starting with '.' or '-', no '..')"
        )
    return name


def parse_count(flag: str, text: str | int | None, *, minimum: int = 0) -> int | None:
    """A whole number >= ``minimum`` from a flag value; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise SpecError(f"{flag} must be a whole number >= {minimum}, got {text!r}")
    value = text if isinstance(text, int) else None
    if value is None:
        stripped = str(text).strip()
        if not stripped.isdigit() or not stripped.isascii():
            raise SpecError(f"{flag} must be a whole number >= {minimum}, got {text!r}")
        value = int(stripped)
    if value < minimum or value > MAX_COUNT:
        raise SpecError(f"{flag} must be a whole number >= {minimum}, got {text!r}")
    return value


def validate_memory(text: str) -> str:
    """Slurm's ``--mem`` form (``16G``, ``512M``, ``2000``), normalised without a trailing B."""
    match = MEMORY.fullmatch(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise SpecError(f"--mem must be a positive size such as 16G or 512M, got {text!r}")
    return f"{int(match.group(1))}{match.group(2).upper()}"


def time_limit_minutes(text: str) -> float:
    """Minutes in a Slurm time limit (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``:
    :mod:`nsml_hpc.job.duration`, without fractions or ``UNLIMITED``)."""
    try:
        seconds = parse_duration(text, fractions=False)
    except ValueError:
        seconds = None
    if seconds is None:
        raise SpecError(
            f"--time must be a Slurm time limit such as 30, 4:00:00 or 2-12:00, got {text!r}"
        )
    return seconds / 60


def validate_time(text: str) -> str:
    if time_limit_minutes(text) <= 0:
        raise SpecError(f"--time must be longer than zero, got {text!r}")
    return text.strip()


def validate_slurm_name(flag: str, text: str) -> str:
    if not SLURM_NAME.fullmatch(text):
        raise SpecError(
            f"{flag} {text!r} is not a valid name (letters, digits, '-', '_', '.', comma-separated)"
        )
    return text


def validate_constraint(text: str) -> str:
    if not CONSTRAINT.fullmatch(text):
        raise SpecError(f"--constraint {text!r} has characters Slurm constraints cannot hold")
    return text


def parse_gpus(flag: str, text: str | int | None) -> tuple[str | None, int | None]:
    """``4`` -> ``(None, 4)``, ``a100:4`` -> ``("a100", 4)`` (Slurm's ``gpu:TYPE:N``)."""
    if text is None:
        return None, None
    if isinstance(text, str) and ":" in text:
        gpu_type, _, count = text.strip().rpartition(":")
        parsed = parse_count(flag, count)
        if parsed is None or parsed == 0:
            raise SpecError(f"{flag} TYPE:N needs N >= 1, got {text!r}")
        return validate_gpu_type(flag, gpu_type), parsed
    try:
        return None, parse_count(flag, text)
    except SpecError:
        raise SpecError(
            f"{flag} must be a whole number >= 0 or TYPE:N (such as a100:2), got {text!r}"
        ) from None


def validate_gpu_type(flag: str, text: str) -> str:
    if not GPU_TYPE.fullmatch(text):
        raise SpecError(f"{flag}: GPU type {text!r} is not a name (letters, digits, '-', '_', '.')")
    return text


def validate_mail_type(text: str) -> str:
    """Slurm's ``--mail-type`` list, upper-cased: ``END,FAIL``."""
    items = [item.strip().upper() for item in str(text).split(",")]
    bad = [item for item in items if item not in MAIL_TYPES]
    if bad or not items:
        raise SpecError(
            f"--mail-type {text!r}: unknown type(s) {', '.join(map(repr, bad))}; valid: "
            + ", ".join(MAIL_TYPES)
        )
    return ",".join(items)


def validate_mail_user(text: str) -> str:
    if not MAIL_USER.fullmatch(text):
        raise SpecError(f"--mail-user {text!r} is not a user name or mail address")
    return text


def validate_dependency(text: str) -> str:
    """Slurm's ``--dependency``: ``afterok:12:13,afterany:14`` (all) or ``a?b`` (any)."""
    separator = "?" if "?" in text else ","
    items = text.split(separator)
    if not text or ("," in text and "?" in text) or not all(map(DEPENDENCY_ITEM.fullmatch, items)):
        raise SpecError(
            f"--dependency {text!r}: use TYPE:JOBID[:JOBID...] joined by ',' (all) or '?' "
            f"(any); TYPE is one of {', '.join(DEPENDENCY_TYPES)}, or singleton"
        )
    return text


def ranks_per_node(resources: Resources, launch: str) -> int:
    """Processes of the training script on each node in a launch mode other than plain."""
    if launch == "srun":
        return resources.ntasks_per_node or 1
    if launch in ("srun-per-gpu", "torchrun"):
        return max(resources.gpus, 1)
    return 1


def validate_launch(spec: SessionSpec) -> str:
    launch, res = spec.launch, spec.resources
    if launch not in LAUNCH_MODES:
        raise SpecError(f"--launch {launch!r}: valid modes are {', '.join(LAUNCH_MODES)}")
    if launch == "srun-per-gpu":
        if res.gpus == 0:
            raise SpecError("--launch srun-per-gpu starts one task per GPU: give --gpus-per-node")
        if res.ntasks_per_node not in (None, res.gpus):
            raise SpecError(
                f"--launch srun-per-gpu starts one task per GPU ({res.gpus} per node); "
                f"--ntasks-per-node {res.ntasks_per_node} disagrees"
            )
    if launch == "torchrun" and res.ntasks_per_node not in (None, 1):
        raise SpecError(
            "--launch torchrun runs one task per node (torchrun starts one process per GPU "
            "itself); leave out --ntasks-per-node"
        )
    return launch


def validate_sbatch_args(spec: SessionSpec) -> list[str]:
    seen: dict[str, str] = {}
    for text in spec.resources.sbatch_args:
        validate_sbatch_arg(text, launch=spec.launch)
        name = option_name(text)
        if name in seen:
            raise SpecError(
                f"--sbatch-arg {text!r}: --{name} is given twice ({seen[name]!r} and {text!r})"
            )
        seen[name] = text
    mem_option = next((n for n in ("mem-per-cpu", "mem-per-gpu") if n in seen), None)
    if mem_option and spec.resources.mem is not None:
        raise SpecError(f"give either --mem or --sbatch-arg --{mem_option}=..., not both")
    return spec.resources.sbatch_args


def validate_env_step(step: EnvStep) -> EnvStep:
    flag = f"--{step.kind}"
    if not step.value or has_control_characters(step.value):
        raise SpecError(f"{flag} needs a one-line value without control characters")
    if step.kind == "module" and not MODULE_NAME.fullmatch(step.value):
        raise SpecError(f"--module {step.value!r} is not a module name")
    return step


def validate_args(args: list[str]) -> list[str]:
    for word in args:
        if "\x00" in word:
            raise SpecError("script arguments cannot contain NUL bytes")
        if len(word.encode("utf-8", "surrogateescape")) > MAX_ARG_BYTES:
            raise SpecError(
                f"a script argument is {len(word)} characters long; "
                f"the limit is {MAX_ARG_BYTES} bytes per argument (put long values in a file)"
            )
    return list(args)


def validate_hyperparameters(args: list[str]) -> None:
    """Hyperparameter values are shown in every table: none may hold control characters
    (the script still gets its arguments byte for byte; see nsml_hpc.job.text)."""
    for name, value in parse_hyperparameters(args).items():
        if isinstance(value, str) and has_control_characters(value):
            raise SpecError(
                f"hyperparameter --{name} has control characters in its value "
                f"({printable(value[:60])}); pass such values in a file"
            )


def validate_memo(text: str) -> str:
    if has_control_characters(text.replace("\t", " ")):
        raise SpecError("--memo must be a single line without control characters")
    if len(text) > 1000:
        raise SpecError("--memo is limited to 1000 characters")
    return text


def validate_resources(resources: Resources) -> Resources:
    """Re-check resources built in code (the CLI builds them through the parse_* helpers)."""
    if resources.gpus < 0 or resources.nodes < 1:
        raise SpecError("--gpus must be >= 0 and --nodes >= 1")
    if resources.cpus_per_gpu is not None and resources.cpus_per_gpu < 1:
        raise SpecError("--cpus-per-gpu must be >= 1")
    if resources.cpus_per_gpu is not None and resources.gpus == 0:
        raise SpecError("--cpus-per-gpu needs --gpus")
    if resources.mem is not None:
        validate_memory(resources.mem)
    if resources.time is not None:
        validate_time(resources.time)
    for flag, value in (
        ("--partition", resources.partition),
        ("--account", resources.account),
        ("--qos", resources.qos),
    ):
        if value is not None:
            validate_slurm_name(flag, value)
    if resources.constraint is not None:
        validate_constraint(resources.constraint)
    if resources.gpu_type is not None:
        validate_gpu_type("--gpus", resources.gpu_type)
        if resources.gpus == 0:
            raise SpecError("a GPU type needs a GPU count (--gpus TYPE:N)")
    for flag, count in (
        ("--ntasks-per-node", resources.ntasks_per_node),
        ("--cpus-per-task", resources.cpus_per_task),
    ):
        if count is not None and (isinstance(count, bool) or count < 1 or count > MAX_COUNT):
            raise SpecError(f"{flag} must be a whole number >= 1")
    if resources.cpus_per_task is not None and resources.cpus_per_gpu is not None:
        raise SpecError("give either --cpus-per-task or --cpus-per-gpu (Slurm takes one)")
    if resources.exclusive is not None and not isinstance(resources.exclusive, bool):
        raise SpecError("exclusive must be true or false")
    if resources.dependency is not None:
        validate_dependency(resources.dependency)
    if resources.reservation is not None:
        validate_slurm_name("--reservation", resources.reservation)
    if resources.mail_type is not None:
        validate_mail_type(resources.mail_type)
    if resources.mail_user is not None:
        validate_mail_user(resources.mail_user)
    return resources


def warning_seconds(spec: SessionSpec) -> int:
    """Seconds before the end at which Slurm warns the job (0: no warning)."""
    grace = spec.preemption.grace_seconds
    if grace is not None:
        return grace
    if spec.resources.time is None:
        return DEFAULT_GRACE_SECONDS
    limit = time_limit_minutes(spec.resources.time) * 60
    return int(min(DEFAULT_GRACE_SECONDS, max(limit / 4, 1)))


def validate_preemption(spec: SessionSpec) -> Preemption:
    policy = spec.preemption
    for flag, value in (("--grace", policy.grace_seconds), ("--max-requeues", policy.max_requeues)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(f"{flag} must be a whole number >= 0, got {value!r}")
    if policy.grace_seconds is not None and policy.grace_seconds > MAX_GRACE_SECONDS:
        raise SpecError(f"--grace must be at most {MAX_GRACE_SECONDS} seconds")
    if policy.max_requeues > MAX_COUNT:
        raise SpecError(f"--max-requeues must be at most {MAX_COUNT}")
    if not isinstance(policy.requeue, bool):
        raise SpecError("requeue must be true or false")
    grace = warning_seconds(spec)
    if spec.resources.time is not None and grace > 0:
        limit = time_limit_minutes(spec.resources.time) * 60
        if grace >= limit:
            raise SpecError(
                f"--grace {grace} s must be shorter than the time limit --time "
                f"{spec.resources.time} ({limit:.0f} s)"
            )
    return policy


def validate_dataset_name(name: str) -> str:
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name) or ".." in name:
        raise SpecError(
            f"invalid dataset name {name!r}: use letters, digits, '-', '_' and '.' "
            "(at most 64, not starting with '.' or '-', no '..')"
        )
    return name


def parse_dataset_ref(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` -> (name, version or None)."""
    name, sep, version = text.partition(":")
    validate_dataset_name(name)
    if not sep:
        return name, None
    if not version.isascii() or not version.isdigit() or int(version) < 1:
        raise SpecError(f"--dataset {text!r}: the version is a whole number >= 1 (NAME:3)")
    return name, int(version)


def validate_dataset(use: DatasetUse) -> DatasetUse:
    validate_dataset_name(use.name)
    if use.version is not None and (
        isinstance(use.version, bool) or not isinstance(use.version, int) or use.version < 1
    ):
        raise SpecError(f"dataset {use.name}: the version must be a whole number >= 1")
    if use.path is not None and (not use.path.startswith("/") or has_control_characters(use.path)):
        raise SpecError(f"dataset {use.name}: invalid path {use.path!r}")
    if not isinstance(use.stage, bool):
        raise SpecError("stage must be true or false")
    return use


def validate_stdout_pattern(pattern: str) -> re.Pattern[str]:
    """A ``--stdout-pattern``: a regular expression whose named groups are the metrics
    (``step``/``epoch`` are the x axis), e.g. ``Iter (?P<step>\\d+): loss (?P<loss>\\S+)``."""
    if not pattern or has_control_characters(pattern) or len(pattern) > MAX_PATTERN_CHARS:
        raise SpecError(
            f"--stdout-pattern must be one line of at most {MAX_PATTERN_CHARS} characters"
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"--stdout-pattern is not a regular expression: {exc}") from None
    names = set(compiled.groupindex)
    metrics = names - X_AXIS_GROUPS
    if not metrics:
        raise SpecError(
            "--stdout-pattern needs a named group per metric, e.g. (?P<loss>\\S+) "
            "(and (?P<step>\\d+) or (?P<epoch>\\d+) for the x axis)"
        )
    bad = sorted(name for name in metrics if not METRIC_GROUP.fullmatch(name))
    if bad:
        raise SpecError(f"--stdout-pattern: {bad[0]!r} is not a metric name")
    return compiled


def validate_spec(spec: SessionSpec) -> SessionSpec:
    """Raise :class:`SpecError` unless every field of ``spec`` is safe to render and submit."""
    validate_project(spec.project)
    validate_resources(spec.resources)
    for step in spec.environment:
        validate_env_step(step)
    validate_args(spec.args)
    validate_hyperparameters(spec.args)
    validate_memo(spec.memo)
    validate_preemption(spec)
    validate_launch(spec)
    validate_sbatch_args(spec)
    for name in spec.after:
        if not isinstance(name, str) or has_control_characters(name) or len(name) > 200:
            raise SpecError(f"--after {name!r} is not a session name")
    if not spec.script or has_control_characters(spec.script) or spec.script.startswith("/"):
        raise SpecError(f"invalid script path {spec.script!r}")
    if spec.dataset is not None:
        validate_dataset(spec.dataset)
    if spec.stdout_pattern is not None:
        validate_stdout_pattern(spec.stdout_pattern)
    return spec
