"""What ``orch land`` is asked to do and what it answers, per attempt."""

from __future__ import annotations

from typing import Any

from orch.attempts.land.build import Strategy
from orch.errors import InvalidInput, OrchError
from orch.models import Attempt
from orch.record import record


@record
class LandRequest:
    """What ``orch land`` was asked to do."""

    refs: tuple[str, ...]  # attempt ids (or prefixes, or payload paths), landed in order
    into: str | None = None  # the target branch (None: see orch.attempts.land.target)
    strategy: Strategy = Strategy.SQUASH
    message: str | None = None
    check: bool = True  # False: --no-check
    resolve: bool = False  # a conflict also sends the attempt a follow-up
    keep: bool = False  # keep the attempt's worktree and branch after it landed
    dry_run: bool = False
    force: bool = False  # land a live attempt's committed work
    strict: bool = False  # refuse an attempt with uncommitted work
    repository: str | None = None  # --repo: the repository the operator means

    def __post_init__(self) -> None:
        # an empty message would be quietly replaced by the default one: say so instead
        if self.message is not None and not self.message.strip():
            raise InvalidInput("--message must not be empty (leave it out for the default)")


@record
class LandOutcome:
    """What happened to one attempt. ``result``: ``landed``, ``already landed``,
    ``would land``, ``would conflict`` or ``failed`` (``error`` says why)."""

    ref: str
    result: str
    attempt: Attempt | None = None
    target: str | None = None
    strategy: str | None = None
    old: str | None = None  # the target's commit before
    commit: str | None = None  # the target's commit after (or, dry run, the result's tree)
    check: str | None = None  # passed, skipped, none configured (None: not reached)
    warnings: tuple[str, ...] = ()
    diffstat: str | None = None  # --dry-run: what the land would change
    removed: str | None = None  # what became of the worktree and branch
    followup: str | None = None  # --resolve: the message or continuation sent
    error: OrchError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result != "would conflict"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "attempt": self.attempt.id if self.attempt is not None else None,
            "result": self.result,
            "target": self.target,
            "strategy": self.strategy,
            "old": self.old,
            "commit": self.commit,
            "check": self.check,
            "warnings": list(self.warnings),
            "diffstat": self.diffstat,
            "removed": self.removed,
            "followup": self.followup,
            "error": (
                {
                    "code": self.error.exit_code,
                    "name": self.error.code_name,
                    "message": self.error.message,
                }
                if self.error is not None
                else None
            ),
        }
