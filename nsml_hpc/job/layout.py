"""The run directory's names and the environment a job sees: the one place they are spelled.

A run directory is the only contract between a job and the front end; both sides (the job
wrapper and the in-job API, submit, sync, snapshots, the sbatch templates through their render
context) take the names from here. Standard library only: this module runs inside the job.

    <run_root>/<user>/<project>/<N>/        a session's run directory (NSML_HPC_RUN_DIR)
      session.json       what to run: the spec, the arguments, the fork (written by submit)
      job.sbatch         the rendered batch script
      code/              the code snapshot; the training script's working directory
      metrics.jsonl      one line per report() (the in-job API appends)
      events.jsonl       lifecycle events (the job wrapper appends)
      gpu.jsonl          GPU samples (the job wrapper's monitor appends)
      slurm-<job>.out    Slurm's output; ``<array>_<task>`` for a sweep's task
      sweep.json         a sweep member's table of all members
      snapshots/<tag>/   snapshots (their own format: :mod:`nsml_hpc.job.snapshot_format`)
      .nsml/job_id       written right after sbatch answered (lets sync adopt a crashed submit;
                         a sweep's session instead names its array's marker in the sweep
                         directory, ``.nsml/array-<k>.job_id``, and its task, in session.json)
      .nsml/code.json    the code snapshot's manifest (the next submit uploads only changes)
      .nsml/python/      on the job's PYTHONPATH: a copy of the in-job nsml_hpc modules
      .nsml/checkpoint-requested   written by the wrapper when Slurm warns (USR2/TERM)
      .nsml/tasks/*.jsonl  events of the task wrappers on every node (multi-node launch modes);
                         the wrapper on the first node relays them into events.jsonl
      .nsml/ranks/*.jsonl  per-rank metrics of ranks other than 0 (report_rank());
                         relayed into metrics.jsonl the same way
      hparams.json       hyperparameters changed while the job runs (``nsml-hpc set``; the
                         in-job API stats it at most every NSML_HPC_HPARAM_INTERVAL seconds)
    <run_root>/<user>/<project>/.N.tmp-...  a run directory being built (renamed into place)

    <dataset root>/<name>/<version>/        one immutable version of a dataset (``dataset push``)
      manifest.json      name, version, every file with its size and sha256 (written last)
      data/              the pushed files, read-only (what NSML_HPC_DATASET points at)
    <dataset root>/<name>/.<version>.tmp-...  a version being uploaded (renamed into place)
"""

from __future__ import annotations

import os

# --- files and folders of a run directory ------------------------------------------------------

SESSION_FILE = "session.json"
SCRIPT_FILE = "job.sbatch"
CODE_DIR = "code"
METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
GPU_FILE = "gpu.jsonl"
SWEEP_FILE = "sweep.json"
SNAPSHOTS_DIR = "snapshots"
PRIVATE_DIR = ".nsml"
JOB_ID_MARKER = "job_id"  # in PRIVATE_DIR
CODE_MANIFEST = "code.json"  # in PRIVATE_DIR
API_PATH_DIR = "python"  # in PRIVATE_DIR
CHECKPOINT_FLAG = f"{PRIVATE_DIR}/checkpoint-requested"  # relative to the run directory
TASKS_DIR = f"{PRIVATE_DIR}/tasks"  # one events file per task wrapper (relative to the run dir)
RANKS_DIR = f"{PRIVATE_DIR}/ranks"  # one metrics file per rank other than 0 (report_rank)
TEMP_MARK = ".tmp-"  # ``.<N>.tmp-<pid>-<hex>``: a run directory still being built
LOCAL_SNAPSHOTS_DIR = "nsml-snapshots"  # save() outside a session: ./nsml-snapshots/<tag>/
HPARAMS_FILE = "hparams.json"  # live hyperparameter changes ({"version", "values", ...})
DATASET_MANIFEST = "manifest.json"  # in a dataset version's folder
DATASET_DATA_DIR = "data"  # in a dataset version's folder: the files themselves
DATASETS_DIR = ".datasets"  # the default dataset root: <run_root>/<user>/.datasets
STAGED_DIR_PREFIX = "nsml-hpc-data-"  # node-local copies: $SLURM_TMPDIR/nsml-hpc-data-<job>/


def slurm_output(job: str) -> str:
    """Slurm's output file for ``job``: a job id (``slurm-42.out``), an array task
    (``42_3``), or a pattern Slurm or the shell fills in (``%j``, ``%A_%a``)."""
    return f"slurm-{job}.out"


SLURM_OUTPUT_PATTERN = slurm_output("%j")  # a session's --output, in its run directory
ARRAY_OUTPUT_PATTERN = slurm_output("%A_%a")  # a sweep's --output, in the sweep directory
# The array script redirects each task into its own run directory under this name.
ARRAY_TASK_OUTPUT = slurm_output("${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}")

# --- environment variables the job sees --------------------------------------------------------

RUN_DIR_ENV = "NSML_HPC_RUN_DIR"  # the run directory (set by the sbatch script)
SESSION_ENV = "NSML_HPC_SESSION"  # the session's name, PROJECT/N (set by the sbatch script)
RESUME_FROM_ENV = "NSML_HPC_RESUME_FROM"  # the snapshot to start from (set by the wrapper)
RESUME_STEP_ENV = "NSML_HPC_RESUME_STEP"  # its step (set by the wrapper)
RESTART_COUNT_ENV = "NSML_HPC_RESTART_COUNT"  # how often Slurm requeued the job (the wrapper)
RUN_ROOT_ENV = "NSML_HPC_RUN_ROOT"  # where load(session=...) looks (also a front-end setting)
LOCAL_SNAPSHOTS_ENV = "NSML_HPC_LOCAL_SNAPSHOTS"  # where save() writes outside a session
GPU_INTERVAL_ENV = "NSML_HPC_GPU_INTERVAL"  # seconds between the wrapper's GPU samples
HEARTBEAT_ENV = "NSML_HPC_HEARTBEAT"  # seconds between the wrapper's ``alive`` lines (0: none)
HEARTBEAT_EVENT = "alive"  # the wrapper's sign of life in events.jsonl (never stored as a row)
HPARAM_INTERVAL_ENV = "NSML_HPC_HPARAM_INTERVAL"  # seconds between stats of hparams.json
DATASET_ENV = "NSML_HPC_DATASET"  # the dataset folder the job reads (staged or shared)
DATASET_NAME_ENV = "NSML_HPC_DATASET_NAME"  # NAME:VERSION of that dataset
SCRATCH_ENVS = ("SLURM_TMPDIR", "TMPDIR")  # node-local scratch, in order of preference


def job_id_from_env() -> str | None:
    """The id sync knows the job by: ``<array>_<task>`` for an array task, else the job id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def relay_file(folder: str, job_id: str | None, restart_count: int, index: int) -> str:
    """``.nsml/tasks/42-0-3.jsonl``: task (or rank) ``index`` of run ``restart_count`` of job
    ``job_id``, relative to the run directory (one writer per file)."""
    return f"{folder}/{job_id or 'nojob'}-{restart_count}-{index}.jsonl"


def template_names() -> dict[str, str]:
    """The names the sbatch templates use, for their render context (``layout.RUN_DIR_ENV``)."""
    return {
        "RUN_DIR_ENV": RUN_DIR_ENV,
        "SESSION_ENV": SESSION_ENV,
        "API_PATH": f"{PRIVATE_DIR}/{API_PATH_DIR}",
        "ARRAY_TASK_OUTPUT": ARRAY_TASK_OUTPUT,
        "SESSION_FILE": SESSION_FILE,
    }
