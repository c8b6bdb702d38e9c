"""The cluster profiles file (``clusters.toml`` beside the config file): read, add, remove.

```toml
[clusters."hpc"]
backend = "ssh"
host = "login.hpc.example.org"
user = "me"
run_root = "/scratch/me/nsml-runs"

[clusters."hpc".defaults]
partition = "gpu"
setup = ["module load cuda/12.2"]
```

The file holds no secrets (there is no password or passphrase field). ``cluster add`` and
``cluster rm`` edit it with tomlkit, which keeps everything they do not change as it was:
the user's comments, blank lines, key order and other profiles (a replaced profile keeps the
comments of the keys it still has). The file is written atomically (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from nsml_hpc.config import locations
from nsml_hpc.config.cluster_profiles import ClusterProfile, profile_from_dict
from nsml_hpc.errors import ConfigError, NotFoundError
from nsml_hpc.suggest import did_you_mean

HEADER = (
    "# nsml-hpc cluster profiles. `nsml-hpc cluster add/rm` edit this file and keep your\n"
    "# comments; editing it by hand is fine. See docs/remote-clusters.md.\n"
)


def load_profiles(path: Path | None = None) -> dict[str, ClusterProfile]:
    """Every profile in the file (none if it does not exist); ConfigError if it is invalid."""
    path = path or locations.clusters_file()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read cluster profiles {path}: {exc}") from exc
    unknown = set(data) - {"clusters"}
    if unknown:
        named = ", ".join(key + did_you_mean(key, ["clusters"]) for key in sorted(unknown))
        raise ConfigError(f"{path}: unknown top-level key(s) {named}; use [clusters.NAME] tables")
    tables = data.get("clusters", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'clusters' must be a table of [clusters.NAME] tables")
    try:
        return {name: profile_from_dict(name, table) for name, table in tables.items()}
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _escape(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def render_profiles(profiles: dict[str, ClusterProfile]) -> str:
    """The file's text for ``profiles`` (sorted by name); ``load_profiles`` reads it back."""
    parts = [HEADER]
    for name in sorted(profiles):
        data = profiles[name].to_dict()
        defaults = data.pop("defaults", None)
        parts.append(f"\n[clusters.{_escape(name)}]\n")
        parts.extend(f"{key} = {_value(value)}\n" for key, value in data.items())
        if defaults:
            parts.append(f"\n[clusters.{_escape(name)}.defaults]\n")
            parts.extend(f"{key} = {_value(value)}\n" for key, value in defaults.items())
    return "".join(parts)


def save_profiles(profiles: dict[str, ClusterProfile], path: Path | None = None) -> Path:
    """Write the file whole, atomically: readers see the old profiles or the new ones."""
    path = path or locations.clusters_file()
    _write_atomically(path, render_profiles(profiles))
    return path


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _document(path: Path) -> Any:
    """The file as a tomlkit document (comments and layout included); a new one with the
    header comment if there is no file yet."""
    import tomlkit

    if not path.is_file():
        document = tomlkit.document()
        for line in HEADER.splitlines():
            document.add(tomlkit.comment(line.removeprefix("# ")))
        return document
    try:
        return tomlkit.parse(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise ConfigError(f"cannot read cluster profiles {path}: {exc}") from exc


def _set_table(table: Any, data: dict[str, Any]) -> None:
    """Make ``table`` hold exactly ``data``, editing it in place (kept keys keep their
    comments and places; nested tables likewise)."""
    import tomlkit

    for key in [key for key in table if key not in data]:
        del table[key]
    for key, value in data.items():
        if isinstance(value, dict):
            if key in table and isinstance(table[key], dict):
                _set_table(table[key], value)
            else:
                nested = tomlkit.table()
                _set_table(nested, value)
                table[key] = nested
        elif key not in table or table[key] != value:
            table[key] = value


def add_profile(
    profile: ClusterProfile, *, replace: bool = False, path: Path | None = None
) -> Path:
    """Add (or with ``replace``, change) one profile, keeping the rest of the file as it is."""
    import tomlkit

    path = path or locations.clusters_file()
    profiles = load_profiles(path)
    if profile.name in profiles and not replace:
        raise ConfigError(
            f"cluster {profile.name!r} already exists; remove it first or pass --replace"
        )
    document = _document(path)
    clusters = document.get("clusters")
    if clusters is None:
        clusters = tomlkit.table(is_super_table=True)
        document["clusters"] = clusters
    data = profile.to_dict()
    if profile.name in clusters:
        _set_table(clusters[profile.name], data)
    else:
        table = tomlkit.table()
        _set_table(table, data)
        clusters[profile.name] = table
    text = tomlkit.dumps(document)
    if load_profiles_text(text, path).get(profile.name) != profile:
        raise ConfigError(f"{path}: the edited file would not read back as {profile.name!r}")
    _write_atomically(path, text)
    return path


def remove_profile(name: str, *, path: Path | None = None) -> Path:
    """Remove one profile, keeping the rest of the file (and its comments) as it is."""
    path = path or locations.clusters_file()
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise NotFoundError(
            f"no cluster profile {name!r}{did_you_mean(name, profiles)} (configured: {known})"
        )
    document = _document(path)
    del document["clusters"][name]
    _write_atomically(path, document.as_string())
    return path


def load_profiles_text(text: str, path: Path) -> dict[str, ClusterProfile]:
    """:func:`load_profiles` of ``text`` (what a write is about to put in ``path``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the edited file is not valid TOML: {exc}") from exc
    tables = data.get("clusters", {})
    return {name: profile_from_dict(name, table) for name, table in tables.items()}
