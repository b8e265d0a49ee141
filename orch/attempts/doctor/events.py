"""Events that could not be delivered: each sink with deliveries failed for good, and
webhook secrets written in a file git tracks. Reported only: a delivery is tried again
by hand ('orch events --retry') once the sink is fixed."""

from __future__ import annotations

from orch.attempts.doctor.base import DoctorBase
from orch.attempts.events import listing


class EventChecks(DoctorBase):
    def _event_deliveries(self) -> None:
        by_sink: dict[str, list[int]] = {}
        last_error: dict[str, str] = {}
        for d in listing.failed(self.store):
            by_sink.setdefault(d.sink, []).append(d.event_id)
            last_error[d.sink] = d.last_error or "?"
        for sink, event_ids in sorted(by_sink.items()):
            shown = ", ".join(map(str, event_ids[:5])) + (", …" if len(event_ids) > 5 else "")
            self._report(
                "event-undelivered",
                sink,
                f"{len(event_ids)} event(s) failed for good (events {shown}); last error: "
                f"{last_error[sink]}",
                "none: fix the sink, then 'orch events --retry EVENT_ID' or "
                "'orch events --all-failed'",
            )
        for warning in listing.secrets_in_git(self.store, self.settings, self.git):
            self._report("secret-in-git", "webhooks", warning, "none: move it to secret_env")
