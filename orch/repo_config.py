"""A repository's own settings: ``orch.toml`` at its root, or ``[tool.orch]`` in its
``pyproject.toml`` (the workspace set-up, the port slots, the checkout, the review check,
the sinks). Read from the main worktree, never from an attempt's copy; writes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from orch.config import parse_slots, read_toml
from orch.errors import ConfigError, InvalidInput
from orch.record import record
from orch.sinks import SECTIONS as SINK_SECTIONS
from orch.sinks import Sink, parse_sinks

INCLUDE_MODES = ("copy", "hardlink", "reflink", "symlink")


@record
class RepoConfig:
    """A repository's own settings: ``orch.toml`` at its root, or ``[tool.orch]`` in
    its ``pyproject.toml``."""

    source: Path | None = None
    include_modes: dict[str, str] = dataclasses.field(default_factory=dict)
    shared: tuple[str, ...] = ()
    setup: str | None = None
    setup_timeout: float = 600.0
    keep_failed: bool = False  # keep the worktree of a failed set-up hook for inspection
    port_slots: dict[str, int] | None = None
    sparse: tuple[str, ...] = ()  # cone-mode sparse checkout of these directories only
    submodules: bool = True  # initialise submodules in new worktrees
    lfs_skip_smudge: bool = False  # leave LFS files as pointers (GIT_LFS_SKIP_SMUDGE=1)
    # [review]: the repository's check command (``sh -c``), how long it may run, and
    # whether ``orch work`` runs it after an agent run that exited 0
    check: str | None = None
    check_timeout: float = 600.0
    check_after_agent: bool = False
    # [[hooks]], [[webhooks]], [notify]: sinks of this repository's events
    sinks: tuple[Sink, ...] = ()


_REPO_KEYS = {
    "workspace": {
        "include",
        "shared",
        "setup",
        "setup_timeout",
        "keep_failed",
        "sparse",
        "submodules",
        "lfs_skip_smudge",
    },
    "ports": {"slots"},
    "review": {"check", "check_timeout", "check_after_agent"},
}


def load_repo_config(root: Path, kept_in: Path | None = None) -> RepoConfig:
    """Read the repository's config; unknown keys are an error, not silently ignored.
    ``kept_in``: the orch home's cache, where the parsed file is kept (``read_toml``)."""
    toml = root / "orch.toml"
    pyproject = root / "pyproject.toml"
    data: dict[str, Any]
    if toml.is_file():
        source, data = toml, read_toml(toml, kept_in=kept_in)
    elif pyproject.is_file():
        data = read_toml(pyproject, kept_in=kept_in).get("tool", {}).get("orch")
        if not data:
            return RepoConfig()
        source = pyproject
    else:
        return RepoConfig()
    where = str(source) if source == toml else f"{source} [tool.orch]"
    sinks = parse_sinks(data, where, source, str(root))
    for section, body in data.items():
        if section in SINK_SECTIONS:
            continue
        if section not in _REPO_KEYS:
            raise ConfigError(
                f"unknown section {section!r} in {where} "
                "(known: workspace, ports, review, hooks, webhooks, notify)"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}] in {where} must be a table")
        unknown = sorted(set(body) - _REPO_KEYS[section])
        if unknown:
            known = ", ".join(sorted(_REPO_KEYS[section]))
            raise ConfigError(
                f"unknown key(s) in [{section}] of {where}: {', '.join(unknown)} (known: {known})"
            )
    workspace = data.get("workspace", {})
    modes = workspace.get("include", {})
    if not isinstance(modes, dict) or any(m not in INCLUDE_MODES for m in modes.values()):
        raise ConfigError(
            f"[workspace] include in {where}: each pattern maps to one of "
            + ", ".join(INCLUDE_MODES)
        )
    shared = workspace.get("shared", [])
    if not isinstance(shared, list) or not all(isinstance(p, str) for p in shared):
        raise ConfigError(f"[workspace] shared in {where} must be a list of paths")
    for path in shared:
        if path.startswith("/") or ".." in Path(path).parts or not path.strip("/"):
            raise ConfigError(
                f"[workspace] shared in {where}: {path!r} must be a relative path "
                "inside the repository"
            )
    setup = workspace.get("setup")
    if setup is not None and not isinstance(setup, str):
        raise ConfigError(f"[workspace] setup in {where} must be a command string")
    slots = data.get("ports", {}).get("slots")
    review = data.get("review", {})
    check = review.get("check")
    if check is not None and (not isinstance(check, str) or not check.strip()):
        raise ConfigError(f"[review] check in {where} must be a command string")
    sparse = workspace.get("sparse", [])
    if not isinstance(sparse, list) or not all(isinstance(p, str) for p in sparse):
        raise ConfigError(f"[workspace] sparse in {where} must be a list of directories")
    try:
        sparse_paths = validate_sparse_paths(sparse)
    except InvalidInput as exc:
        raise ConfigError(f"[workspace] sparse in {where}: {exc.message}") from exc
    return RepoConfig(
        source=source,
        include_modes={str(k): str(v) for k, v in modes.items()},
        shared=tuple(p.strip("/") for p in shared),
        setup=setup,
        setup_timeout=_coerce_positive(workspace.get("setup_timeout", 600), where),
        port_slots=parse_slots(slots, where) if slots is not None else None,
        keep_failed=_coerce_bool(workspace.get("keep_failed", False), "keep_failed", where),
        sparse=sparse_paths,
        submodules=_coerce_bool(workspace.get("submodules", True), "submodules", where),
        lfs_skip_smudge=_coerce_bool(
            workspace.get("lfs_skip_smudge", False), "lfs_skip_smudge", where
        ),
        check=check,
        check_timeout=_coerce_positive(
            review.get("check_timeout", 600), where, "[review] check_timeout"
        ),
        check_after_agent=_coerce_bool(
            review.get("check_after_agent", False), "check_after_agent", where, "review"
        ),
        sinks=sinks,
    )


def validate_sparse_paths(paths: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Directories relative to the repository root, for a cone-mode sparse checkout."""
    result: list[str] = []
    for raw in paths:
        path = raw.strip().strip("/")
        if (
            not path
            or raw.startswith("/")
            or path.startswith("-")
            or ".." in Path(path).parts
            or path == "."
            or any(ord(ch) < 32 for ch in path)
            or "\\" in path
        ):
            raise InvalidInput(
                f"invalid sparse path {raw!r}: use a directory relative to the repository root"
            )
        if path not in result:
            result.append(path)
    return tuple(result)


def _coerce_positive(value: Any, where: str, key: str = "[workspace] setup_timeout") -> float:
    # a TOML number only: float() would also take true (1.0), "5", nan and inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} in {where} must be a number: {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} in {where} must be positive: {value!r}")
    return float(value)


def _coerce_bool(value: Any, key: str, where: str, section: str = "workspace") -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"[{section}] {key} in {where} must be true or false")
    return value
