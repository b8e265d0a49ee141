"""Listing the pool (``orch pool list``, ``orch doctor``): every member of every flavour
with what is wrong with it, and members git still lists whose directory is gone. A fill
in progress is left alone. Nothing here changes the pool.
"""

from __future__ import annotations

from pathlib import Path

from orch.config import Settings
from orch.fslock import try_lock
from orch.git import Git, Repository
from orch.record import record
from orch.workspace.pool.checks import _admin_head, _missing_members, check_member
from orch.workspace.pool.layout import (
    DAMAGED,
    FILLING,
    READY,
    WORKTREE,
    _fill_lock,
    _flavour_dirs,
    _names,
    pool_root,
)


@record
class MemberInfo:
    path: Path
    flavour: str
    commit: str | None
    problem: str | None  # None: ready to hand out

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "flavour": self.flavour,
            "commit": self.commit,
            "problem": self.problem,
        }


def inspect(git: Git, repo: Repository, settings: Settings) -> list[MemberInfo]:
    """Every member of every flavour, with what is wrong with it; plus members git still
    lists under the pool whose directory is gone. A fill in progress is left alone, and
    so are the worktrees attempts claimed."""
    root = pool_root(settings, repo)
    try:
        filling = try_lock(_fill_lock(repo), "orch pool inspect")
    except OSError:
        filling = None  # cannot tell whether a fill runs: leave work in progress alone
    try:
        infos = []
        seen = set()
        for directory in _flavour_dirs(root):
            for name in _names(directory):
                path = directory / name
                seen.add(path)
                if name.startswith(WORKTREE):
                    continue  # reported under its marker, or claimed: an attempt's
                if name.startswith(READY) and not path.is_dir():
                    path = directory / f"{WORKTREE}{name.removeprefix(READY)}"
                    seen.add(path)
                    problem = check_member(git, repo, path)
                elif filling is None:
                    continue  # a fill is running: its work in progress is not a problem
                elif name.startswith(FILLING):
                    path = directory / f"{WORKTREE}{name.removeprefix(FILLING)}"
                    seen.add(path)
                    problem = "left over by an interrupted fill"
                elif name.startswith(READY):
                    problem = "made by an older orch (the next fill replaces it)"
                elif name.startswith(DAMAGED):
                    problem = "set aside as damaged by a dispatch"
                else:
                    problem = "not a pool member"
                infos.append(MemberInfo(path, directory.name, _admin_head(path), problem))
        for path, commit in _missing_members(git, repo, root):
            if path in seen or (filling is None and path.name.startswith(FILLING)):
                continue
            infos.append(MemberInfo(path, path.parent.name, commit, "missing"))
        return infos
    finally:
        if filling is not None:
            filling.release()
