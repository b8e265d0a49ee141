"""Leasing a port bundle for an attempt: the first free block on this host.

A block is free when no attempt on this host holds it in the store (a unique constraint
decides between processes racing for it) and none of its ports is in use on this
machine right now or refused by browsers. Released by cleanup and when a worker is gone. A
spare block for a run outside any attempt's worktree (a land's check) is found the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orch.config import Settings
from orch.errors import WorkspaceError
from orch.models import PortBundle
from orch.system import ports

if TYPE_CHECKING:
    from orch.store import Store


def lease_bundle(
    store: Store,
    settings: Settings,
    attempt_id: str,
    host: str,
    actor: str,
    slots: dict[str, int] | None = None,
) -> PortBundle:
    size = settings.port_block_size
    held = store.held_port_blocks(host)
    start = settings.port_base
    while start + size - 1 <= settings.port_limit:
        if start not in held and ports.block_usable(start, size):
            chosen = settings.port_slots if slots is None else slots
            bundle = PortBundle(start=start, size=size, slots=dict(chosen))
            if store.lease_ports(attempt_id, host, bundle, actor):
                return bundle
            held = store.held_port_blocks(host)  # someone took it first: look again
        start += size
    raise WorkspaceError(
        f"no free block of {size} ports between {settings.port_base} and {settings.port_limit} "
        "on this machine: clean up ended attempts ('orch cleanup --all-terminal') or widen "
        "port_limit"
    )


def spare_bundle(store: Store, settings: Settings, host: str) -> PortBundle:
    """A block no attempt on this host holds and no process uses right now, for a run
    that belongs to no attempt's worktree (the check of a land's result). It is not
    leased: it lasts one short run, and a dispatch leasing it meanwhile is refused only
    by the ports being in use."""
    size = settings.port_block_size
    held = store.held_port_blocks(host)
    # from the top block down (dispatch leases from the bottom up), on the same grid
    start = settings.port_base + ((settings.port_limit - settings.port_base + 1) // size - 1) * size
    while start >= settings.port_base:
        if start not in held and ports.block_usable(start, size):
            return PortBundle(start=start, size=size, slots=dict(settings.port_slots))
        start -= size
    raise WorkspaceError(
        f"no free block of {size} ports between {settings.port_base} and "
        f"{settings.port_limit} on this machine for the check: clean up ended attempts "
        "('orch cleanup --all-terminal') or widen port_limit"
    )
