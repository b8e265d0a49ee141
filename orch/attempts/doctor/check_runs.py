"""Checks a kill -9 cut short: a check run whose end was never recorded while the process
that ran it, on this host, is gone. Repaired by recording it as interrupted (its result
will never be heard); a check that still runs is left alone."""

from __future__ import annotations

import functools

from orch.attempts.check import abandoned_checks, end_abandoned
from orch.attempts.doctor.base import DoctorBase
from orch.models import Attempt, Run


class CheckRunChecks(DoctorBase):
    def _abandoned_checks(self, attempts: list[Attempt]) -> None:
        for run in abandoned_checks(self.store, self.settings, [a.id for a in attempts]):
            finding = self._report(
                "check-abandoned",
                run.attempt_id,
                f"check run {run.number} never ended: the process that ran it "
                f"(pid {run.pid} on this host) is gone",
                "record it as interrupted",
            )
            self._repair(finding, functools.partial(self._end_check, run))

    def _end_check(self, run: Run) -> None:
        end_abandoned(self.store, run, self.actor)
