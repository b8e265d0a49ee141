"""The one error hierarchy of orch.

Every failure a user can cause is an ``OrchError`` subclass whose class attribute
``exit_code`` is its documented exit code and whose docstring is its default message.
Only ``orch.cli`` turns these into a line on stderr and an exit status; adapters raise
them ``from`` the foreign exception they translate. This module imports nothing.
"""

from __future__ import annotations


class OrchError(Exception):
    """orch failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def code_name(self) -> str:
        """The name of the exit code, as the README's table gives it: the class that
        defines ``exit_code`` (``StoreError`` for every store failure)."""
        for cls in type(self).__mro__:
            if "exit_code" in vars(cls):
                return cls.__name__
        return OrchError.__name__


class InvalidInput(OrchError):
    """Invalid input."""

    exit_code = 2


class InvalidTaskKey(InvalidInput):
    """Invalid task key."""


class RepositoryError(OrchError):
    """The repository cannot be used."""

    exit_code = 3


class NotAGitRepository(RepositoryError):
    """Not a git repository."""


class BareRepository(RepositoryError):
    """The repository is bare: orch needs a main worktree to dispatch from."""


class EmptyRepository(RepositoryError):
    """The repository has no commits yet (unborn HEAD)."""


class BaseRefError(OrchError):
    """The base ref cannot be used."""

    exit_code = 4


class UnknownBaseRef(BaseRefError):
    """Unknown base ref."""


class BaseRefNotACommit(BaseRefError):
    """The base ref does not name a commit."""


class DirtyRepository(OrchError):
    """The repository has uncommitted changes."""

    exit_code = 5

    def __init__(self, message: str, paths: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.paths = paths


class StoreError(OrchError):
    """The attempt store cannot be used."""

    exit_code = 6


class StoreUnavailable(StoreError):
    """The attempt store cannot be reached now: a dropped connection, a restarting server,
    a SQLite store locked past its busy timeout. Trying again later may succeed, and
    ``orch.outage.ride_out`` is the one place that does."""


class StoreConflict(StoreError):
    """A write broke one of the store's uniqueness rules: another process wrote first.

    ``constraint`` names the rule (PostgreSQL's name for it, on SQLite too), so that the
    caller who expects that race can tell it from another."""

    def __init__(self, message: str | None = None, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class AttemptIdTaken(StoreConflict):
    """The new attempt's random id is already in the store (a rare collision of 32 random
    bits); the caller draws another id, and the names made from it, and tries again."""


class StoreTooNew(StoreError):
    """The attempt store was written by a newer orch."""


class StoreBehind(StoreError):
    """The attempt store needs a migration."""


class WorkspaceError(OrchError):
    """The attempt's workspace could not be provisioned."""

    exit_code = 7


class GitError(WorkspaceError):
    """A git command failed."""


class GitTooOld(GitError):
    """This git is too old for the operation (``orch land`` needs git 2.38 or newer)."""


class NotFound(OrchError):
    """Not found."""

    exit_code = 8


class AttemptNotFound(NotFound):
    """No such attempt."""


class AmbiguousAttempt(NotFound):
    """The attempt id prefix matches more than one attempt."""


class PayloadError(OrchError):
    """The payload cannot be read."""

    exit_code = 9


class LockBusy(OrchError):
    """A lock stayed busy for longer than orch waits."""

    exit_code = 10


class WorktreeBusy(LockBusy):
    """Another process (an agent, a check) works in the attempt's worktree."""


class ConfigError(OrchError):
    """The configuration is invalid."""

    exit_code = 11


class UnsafeHome(ConfigError):
    """The orch home is owned by another user or writable by others: refused."""


class Conflict(OrchError):
    """The attempt changed underneath this operation."""

    exit_code = 12


class TargetMoved(Conflict):
    """The land's target kept moving while orch landed onto it: tried again a bounded
    number of times, then gave up (nothing of anyone's was overwritten)."""


class LeaseLost(Conflict):
    """The lease was taken away: this worker may no longer write to the attempt."""

    exit_code = 13


class AttemptsUnsuccessful(OrchError):
    """Some attempts ended unsuccessfully."""

    exit_code = 14


class NotAllLanded(AttemptsUnsuccessful):
    """Some attempts of ``orch land A B C`` did not land; the others did."""


class CheckFailed(AttemptsUnsuccessful):
    """The check command exited with a failure or ran out of time."""


class NotAllDispatched(AttemptsUnsuccessful):
    """Some attempts of a best-of-N dispatch failed to provision; the others stand."""


class WaitTimedOut(OrchError):
    """Timed out waiting for attempts to end."""

    exit_code = 15


class RetryRefused(OrchError):
    """The task cannot be retried now."""

    exit_code = 16


class NotClaimable(OrchError):
    """The attempt cannot be claimed."""

    exit_code = 17


class ServeError(OrchError):
    """A server of orch (the dashboard, the heartbeat loop, the MCP server) cannot start."""

    exit_code = 19


class McpUnavailable(ServeError):
    """``orch mcp`` needs the MCP SDK (the ``mcp`` extra), which is not installed."""


class LandConflict(OrchError):
    """The attempt's work conflicts with the target: it did not land."""

    exit_code = 21

    def __init__(self, message: str, paths: tuple[str, ...] = (), at: str = "") -> None:
        super().__init__(message)
        self.paths = paths  # the conflicting paths
        self.at = at  # the target's commit the work conflicts with


class LandRefused(OrchError):
    """The land cannot happen as asked: nothing was changed."""

    exit_code = 22


class PullRequestUnavailable(OrchError):
    """A pull request cannot be opened from here: ``gh`` is not installed or not logged
    in, or the repository has no remote to push the attempt's branch to. Nothing was
    recorded."""

    exit_code = 23


class GitHubError(PullRequestUnavailable):
    """A ``gh`` command failed (GitHub refused the pull request, or could not be reached)."""


def describe_os_error(exc: OSError) -> str:
    """A short reason for a file-system failure, in words a user acts on."""
    if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename:
        # mkdir(exist_ok=True) says "File exists" when a file is in the way: name the file
        import os.path

        path = os.fspath(exc.filename)
        while path and not os.path.lexists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        return f"{path} is not a directory"
    if exc.errno == 28:  # ENOSPC
        return "the disk is full"
    return exc.strerror or str(exc)
