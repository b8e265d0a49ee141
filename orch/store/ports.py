"""Port leases: a uniqueness constraint on (host, block start) makes two attempts unable
to hold one block, however many processes dispatch at the same moment."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from orch.errors import StoreConflict
from orch.models import PortBundle
from orch.store.base import StoreBase
from orch.store.tables import port_leases as _P


class PortOps(StoreBase):
    def held_port_blocks(self, host: str) -> set[int]:
        with self._read() as conn:
            return set(conn.scalars(select(_P.c.block_start).where(_P.c.host == host)))

    def lease_ports(self, attempt_id: str, host: str, bundle: PortBundle, actor: str) -> bool:
        """Take ``bundle`` for the attempt; False if another attempt holds that block."""
        try:
            with self._write() as conn:
                conn.execute(
                    insert(_P).values(
                        attempt_id=attempt_id,
                        host=host,
                        block_start=bundle.start,
                        block_size=bundle.size,
                        slots=dict(bundle.slots),
                        leased_at=self.clock(),
                    )
                )
                self._event(
                    conn,
                    attempt_id,
                    "ports_leased",
                    actor,
                    start=bundle.start,
                    end=bundle.end,
                    host=host,
                )
        except StoreConflict:  # another attempt holds that block
            return False
        return True

    def port_bundle(self, attempt_id: str) -> PortBundle | None:
        with self._read() as conn:
            row = conn.execute(select(_P).where(_P.c.attempt_id == attempt_id)).first()
            if row is None:
                return None
            return PortBundle(start=row.block_start, size=row.block_size, slots=dict(row.slots))

    def release_ports(self, attempt_id: str, actor: str, reason: str) -> bool:
        with self._write() as conn:
            result = conn.execute(delete(_P).where(_P.c.attempt_id == attempt_id))
            released = bool(result.rowcount)
            if released:
                self._event(conn, attempt_id, "ports_released", actor, reason=reason)
            return released
