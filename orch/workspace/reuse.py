"""Finishing an attempt that works in an existing place instead of a new worktree.

Used for later phases of a task that reuse its worktree (``reused``), for a follow-up to
an ended attempt (also ``reused``), and when provisioning is skipped because orch runs
inside a linked worktree (``skipped-in-worktree``) or outside git (``skipped-not-git``).
The attempt still gets a port bundle and a payload; no branch or worktree is created.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from orch.config import Settings
from orch.errors import Conflict, OrchError
from orch.models import Attempt, WorkspaceStatus
from orch.system import inbox, ports
from orch.workspace.port_bundles import lease_bundle

if TYPE_CHECKING:
    from orch.store import Store


def refuse_if_busy(store: Store, worktree: Path) -> None:
    """One active attempt per worktree: a later phase waits for the earlier one to end."""
    for other in store.attempts_using_worktree(str(worktree)):
        if not other.terminal:
            raise Conflict(
                f"attempt {other.id} ({other.state}) still works in {worktree}: one attempt "
                f"at a time per worktree; wait for it ('orch wait {other.id}') or cancel it"
            )


def finish_in_place(
    store: Store,
    settings: Settings,
    attempt: Attempt,
    status: WorkspaceStatus,
    actor: str,
    slots: dict[str, int] | None = None,
    write_ports_file: bool = True,
    prompt_history: list[str] | None = None,
) -> Attempt:
    """Lease ports, write the ports file and payload, and finalise the attempt."""
    payload_file = inbox.payload_path(settings.inbox_dir, attempt.id)
    try:
        bundle = lease_bundle(store, settings, attempt.id, settings.host_name, actor, slots)
        if write_ports_file and attempt.worktree_path:
            ports.write_ports_file(Path(attempt.worktree_path), bundle)
        ready = dataclasses.replace(
            attempt, workspace_status=status, payload_path=str(payload_file)
        )
        inbox.write_payload(
            payload_file,
            inbox.build_payload(
                ready,
                orch_home=settings.home,
                lease_ttl=settings.lease_ttl,
                ports=bundle.ports,
                prompt_history=prompt_history,
            ),
        )
    except OrchError as exc:
        inbox.remove_payload(payload_file)
        store.release_ports(attempt.id, actor, "provisioning failed")
        store.fail_provisioning(attempt.id, exc.message, actor)
        raise
    return store.finish_provisioning(attempt.id, payload_file, actor, status)
