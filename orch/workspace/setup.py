"""Making a fresh worktree ready to work in: what git does not carry, shared state, set-up.

1. ``.worktreeinclude`` at the repository root (gitignore syntax, the convention other
   agent tools read too) names ignored files of the main worktree to bring into each new
   worktree. Only ignored files qualify: tracked files come from git, untracked ones are
   the operator's work in progress. Each pattern can choose how (``[workspace.include]``
   in ``orch.toml``): ``copy``, ``hardlink``, ``reflink`` (falls back to hard links where
   the file system cannot) or ``symlink``; files are copied and directories hard-linked
   by default, so a ``node_modules`` tree is never duplicated byte for byte.
2. ``[workspace] shared`` directories are symlinked from the main worktree, so every
   attempt sees one shared state; an existing path in the worktree is never clobbered, a
   path that a symbolic link leads out of the repository is refused before anything is
   made, and untracked shared directories are kept out of git (``info/exclude``), so they
   never count as dirt.
3. ``[workspace] setup`` runs in the new worktree with the port bundle in its
   environment, a timeout, and its output in the attempt's log; failing fails the
   provisioning (which is then rolled back like any other failure).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from orch.errors import ConfigError, WorkspaceError
from orch.git import DirtyPath, Git, Repository, add_excludes, ignored_entries
from orch.models import PortBundle
from orch.repo_config import RepoConfig
from orch.system import ports, processes
from orch.workspace import copying

if TYPE_CHECKING:
    import pathspec

INCLUDE_FILE = ".worktreeinclude"
# Ignored directories not descended into when looking for single included files inside.
HEAVY_DIRS = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "target",
        "build",
        "dist",
        "__pycache__",
        ".cache",
        ".gradle",
        ".tox",
        ".mypy_cache",
    }
)


def _spec(lines: list[str]) -> pathspec.GitIgnoreSpec:
    # imported here: it costs a dispatch ~12 ms, and most repositories have no rules
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def include_rules(root: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        text = (root / INCLUDE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"cannot read {root / INCLUDE_FILE}: {exc}") from exc
    return _spec(text.splitlines())


def _mode(
    path: str, is_dir: bool, modes: dict[str, pathspec.GitIgnoreSpec], names: dict[str, str]
) -> str:
    for pattern, spec in modes.items():
        if spec.match_file(path):
            return names[pattern]
    return "hardlink" if is_dir else "copy"


def anchored(rel: str) -> str:
    """An ``info/exclude`` line matching exactly ``rel`` (file, directory or link)."""
    return "/" + "".join("\\" + c if c in "\\*?[ " else c for c in rel)


def copy_included(git: Git, repo: Repository, worktree: Path, config: RepoConfig) -> list[str]:
    """Bring the ignored files ``.worktreeinclude`` names into ``worktree``; return them."""
    rules = include_rules(repo.root)
    if rules is None:
        return []
    modes = {p: _spec([p]) for p in config.include_modes}
    placed = []
    for entry in ignored_entries(git, repo.root):
        is_dir = entry.endswith("/")
        rel = entry.rstrip("/")
        if rules.match_file(entry):
            mode = _mode(entry, is_dir, modes, config.include_modes)
            if copying.place(repo.root / rel, worktree / rel, mode):
                placed.append(f"{rel} ({mode})")
                if mode == "symlink" and is_dir:
                    # a link to a directory is not a directory to git: a ``node_modules/``
                    # rule no longer ignores it, and ``git add -A`` would commit the link
                    add_excludes(repo, [anchored(rel)])
        elif is_dir and Path(rel).name not in HEAVY_DIRS:
            for dirpath, dirnames, filenames in os.walk(repo.root / rel):
                dirnames[:] = [d for d in dirnames if d not in HEAVY_DIRS]
                for name in filenames:
                    sub = os.path.relpath(os.path.join(dirpath, name), repo.root)
                    if rules.match_file(sub):
                        mode = _mode(sub, False, modes, config.include_modes)
                        if copying.place(repo.root / sub, worktree / sub, mode):
                            placed.append(f"{sub} ({mode})")
    return placed


def link_shared(
    repo: Repository, worktree: Path, config: RepoConfig
) -> tuple[list[str], list[str]]:
    """Symlink the shared directories; return (linked, skipped because something is there)."""
    refuse_shared_outside(repo.root, worktree, config)
    # only what is to be linked: excluding a path that is tracked content (skipped) would
    # hide every new file under it from git, in the main worktree too. Excluded before the
    # main worktree's directory is made, so that no failure in between leaves it untracked
    # for the next --strict dispatch to refuse.
    todo = [rel for rel in config.shared if not _present(worktree / rel)]
    if todo:
        add_excludes(repo, [anchored(p) for p in todo])
    linked, skipped = [], []
    for rel in config.shared:
        if copying.link_shared(repo.root / rel, worktree / rel):
            linked.append(rel)
        else:
            skipped.append(rel)
    return linked, skipped


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def refuse_shared_outside(repo_root: Path, worktree: Path | None, config: RepoConfig) -> None:
    """Refuse a shared path that a symbolic link (a tracked one, say) leads out of the
    repository or the worktree, before anything is created anywhere. Dispatch asks about
    the main worktree before it records anything; set-up asks again about the new worktree
    (its commit may have links the main worktree has not)."""
    roots = (repo_root,) if worktree is None else (repo_root, worktree)
    for rel in config.shared:
        for root in roots:
            real = os.path.realpath(root / rel)
            top = os.path.realpath(root)
            if os.path.commonpath([real, top]) != top:
                raise ConfigError(
                    f"[workspace] shared path {rel!r} leads outside the repository through a "
                    f"symbolic link ({root / rel} is {real}): refused, nothing was created"
                )


def exclude_shared_dirt(repo: Repository, config: RepoConfig, dirt: list[DirtyPath]) -> bool:
    """Keep untracked shared directories out of the dirt check, as ``.orch/`` is kept out:
    through ``info/exclude``. True when a path was excluded (the caller looks again)."""
    untracked = [d.path.rstrip("/") for d in dirt if d.code == "??"]
    # a shared path that is untracked itself or lies in an untracked directory holds no
    # tracked content: excluding it hides nothing git tracks (one under tracked content,
    # reported as its own new files, is never excluded)
    found = [
        rel for rel in config.shared if any(u == rel or rel.startswith(u + "/") for u in untracked)
    ]
    if found:
        add_excludes(repo, [anchored(rel) for rel in found])
    return bool(found)


def run_setup(
    worktree: Path,
    config: RepoConfig,
    bundle: PortBundle | None,
    log_path: Path,
    base_env: dict[str, str],
) -> None:
    if not config.setup:
        return
    env = {
        **base_env,
        **(ports.environment(bundle) if bundle else {}),
        "ORCH_WORKTREE": str(worktree),
    }
    code = processes.run_hook(config.setup, worktree, env, log_path, config.setup_timeout)
    if code == 0:
        return
    tail = " | ".join(
        ln.strip()
        for ln in processes.log_tail(log_path, 6)
        if ln.strip() and not ln.startswith("=== orch")
    )[-300:]
    what = f"timed out after {config.setup_timeout:g}s" if code is None else f"exited with {code}"
    raise WorkspaceError(f"set-up hook {config.setup!r} {what}: {tail or '(no output)'}")
