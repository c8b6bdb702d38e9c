"""Structure of the containerised Slurm sandbox (docker-compose.slurm.yml + sandbox/Dockerfile).

No Docker engine runs on our machines, so these tests only read the files: they check that the
compose service builds the image that runs the same sandbox script CI runs, and that the
cluster is reachable the way the integration tests expect (ssh on 127.0.0.1:2222).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.slurm.yml"
SCRIPT = "sandbox/slurm-sandbox.sh"
SSH_PORT = 2222


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def _command_words(value: str | list[str]) -> list[str]:
    """Words of a Dockerfile/compose command in exec (JSON/list) or shell form."""
    if isinstance(value, list):
        return [str(word) for word in value]
    value = value.strip()
    if value.startswith("["):
        return [str(word) for word in yaml.safe_load(value)]
    return shlex.split(value)


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host_ip, published, target) for short ("ip:host:container") and long port syntax."""
    ports: list[tuple[str, str, str]] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append(
                (
                    str(entry.get("host_ip", "")),
                    str(entry.get("published", "")),
                    str(entry["target"]),
                )
            )
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) == 3:
            ports.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            ports.append(("", parts[0], parts[1]))
        else:
            ports.append(("", "", parts[0]))
    return ports


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    slurm: dict[str, Any] = compose["services"]["slurm"]
    return slurm


@pytest.fixture(scope="module")
def dockerfile(service: dict[str, Any]) -> list[tuple[str, str]]:
    build = service["build"]
    return _dockerfile_instructions(ROOT / build["context"] / build["dockerfile"])


def test_compose_defines_one_slurm_service(compose: dict[str, Any]) -> None:
    assert list(compose["services"]) == ["slurm"]


def test_slurm_service_builds_sandbox_dockerfile_from_repo_root(service: dict[str, Any]) -> None:
    build = service["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert build["dockerfile"] == "sandbox/Dockerfile"


def test_node_hostname_is_vm(service: dict[str, Any]) -> None:
    assert service["hostname"] == "vm"


def test_dockerfile_copies_the_sandbox_script(dockerfile: list[tuple[str, str]]) -> None:
    copies = [args.split() for keyword, args in dockerfile if keyword == "COPY"]
    assert any(words[0] == SCRIPT for words in copies), copies


def test_dockerfile_installs_packages_at_build_time(dockerfile: list[tuple[str, str]]) -> None:
    runs = [args for keyword, args in dockerfile if keyword == "RUN"]
    assert any("slurm-sandbox.sh install" in args for args in runs), runs


def test_dockerfile_entrypoint_runs_the_sandbox_in_the_foreground(
    dockerfile: list[tuple[str, str]],
) -> None:
    entrypoints = [args for keyword, args in dockerfile if keyword == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    words = _command_words(entrypoints[-1])
    assert Path(words[0]).name == "slurm-sandbox.sh"
    assert words[1:] == ["run"]


def test_dockerfile_starts_from_debian_bookworm(dockerfile: list[tuple[str, str]]) -> None:
    assert dockerfile[0] == ("FROM", "debian:bookworm")


def test_ssh_is_published_on_localhost_only(service: dict[str, Any]) -> None:
    ssh = [p for p in _published_ports(service) if p[2] == str(SSH_PORT)]
    assert ssh == [("127.0.0.1", str(SSH_PORT), str(SSH_PORT))]


def test_container_may_create_fake_gpu_device_nodes(service: dict[str, Any]) -> None:
    assert "MKNOD" in service.get("cap_add", [])


def test_healthcheck_asks_the_sandbox_script_for_status(service: dict[str, Any]) -> None:
    words = _command_words(service["healthcheck"]["test"])
    if words[0] in ("CMD", "CMD-SHELL"):
        words = words[1:] if words[0] == "CMD" else shlex.split(" ".join(words[1:]))
    assert Path(words[0]).name == "slurm-sandbox.sh"
    assert words[1:] == ["status"]


def test_container_subcommands_exist_in_the_script() -> None:
    """`run` (entrypoint), `install` (build) and `status` (healthcheck) are real sub-commands."""
    usage = subprocess.run(
        ["bash", str(ROOT / SCRIPT), "help"], capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[0] for line in usage.splitlines()[1:] if line.strip()}
    assert {"install", "up", "run", "down", "status", "logs"} <= listed


def test_sandbox_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(ROOT / SCRIPT)], check=True)
