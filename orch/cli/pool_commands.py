"""``orch pool``: the warm worktree pool of a repository (fill, list, drain)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from orch.cli.common import REPO_OPTION, repo_or_cwd, settings_from_env

if TYPE_CHECKING:
    from orch.config import Settings
    from orch.git import Git, Repository
    from orch.models import CheckoutSpec


def _context(repo: Path | None) -> tuple[Settings, Git, Repository]:
    from orch.git import Git

    settings = settings_from_env()
    git = Git(settings.git_lock_timeout)
    return settings, git, git.discover(repo_or_cwd(repo))


def _head_spec(git: Git, repository: Repository) -> CheckoutSpec:
    """How a dispatch at HEAD checks out: the flavour the pool's members are made for."""
    from orch.models import CheckoutSpec
    from orch.repo_config import load_repo_config

    config = load_repo_config(repository.root)
    head = git.resolve_commit(repository, "HEAD")
    return CheckoutSpec(
        submodules=config.submodules if git.has_submodules(repository, head) else None,
        lfs_skip_smudge=config.lfs_skip_smudge,
    )


@click.group()
def pool() -> None:
    """Keep clean worktrees ready so that dispatch on a large repository is fast.

    A dispatch takes a ready worktree from the pool (when there is one) and hands it over
    in place: the member is not moved, its path becomes the attempt's worktree_path, and
    the attempt's branch is checked out in it, rewriting only the files that differ. An
    empty pool falls back to creating a worktree.
    """


@pool.command()
@REPO_OPTION
@click.option(
    "--size",
    type=click.IntRange(min=0),
    default=None,
    help="Keep this many ready worktrees (remembered for the refills after dispatch; "
    "default: the last size given, else the pool_size setting).",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fill(repo: Path | None, size: int | None, quiet: bool, as_json: bool) -> None:
    """Bring the pool to its size: replace damaged members, refresh old ones to HEAD."""
    from orch.workspace.pool import fill as run_fill

    settings, git, repository = _context(repo)
    spec = _head_spec(git, repository)
    result = run_fill(git, repository, settings, spec, size)
    if as_json:
        from orch.cli.render import to_json

        click.echo(
            to_json(
                size=result.size,
                ready=result.ready,
                created=result.created,
                refreshed=result.refreshed,
                removed=list(result.removed),
            )
        )
    elif not quiet:
        for line in result.removed:
            click.echo(f"removed {line}")
        click.echo(
            f"pool of {repository.root}: {result.ready} ready (size {result.size}; "
            f"{result.created} created, {result.refreshed} refreshed)"
        )
        if not spec.poolable:
            click.echo(
                "no pool: HEAD's checkout includes submodules, and a worktree that has "
                "them cannot be moved; dispatch makes fresh worktrees ('submodules = "
                "false' under [workspace] pools them without submodules)"
            )


@pool.command(name="list")
@REPO_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(repo: Path | None, as_json: bool) -> None:
    """List the pool's members and what is wrong with any of them."""
    from orch.workspace.pool import inspect, target_size

    settings, git, repository = _context(repo)
    members = inspect(git, repository, settings)
    size = target_size(settings, repository)
    if as_json:
        from orch.cli.render import to_json

        click.echo(to_json(size=size, members=[m.to_dict() for m in members]))
        return
    click.echo(f"size {size}, {sum(m.problem is None for m in members)} ready")
    for m in members:
        state = m.problem or "ready"
        click.echo(f"{m.flavour:<12} {(m.commit or '-')[:12]:<12}  {state}  {m.path}")


@pool.command()
@REPO_OPTION
def drain(repo: Path | None) -> None:
    """Remove every pool member and forget the pool's size."""
    from orch.workspace.pool import drain as run_drain

    settings, git, repository = _context(repo)
    count, kept = run_drain(git, repository, settings)
    click.echo(f"removed {count} pool member(s) of {repository.root}")
    if kept:
        click.echo(
            f"kept {kept} damaged member(s) that may hold unsaved work: "
            "'orch doctor --fix' archives and removes them"
        )


COMMANDS = [pool]
