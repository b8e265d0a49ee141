"""Lands a crash interrupted: an attempt whose land intent is still recorded while no
land into its target runs. Repaired by orch.attempts.land.recovery (recorded as landed
when the target has the result, cleared otherwise)."""

from __future__ import annotations

import functools
from pathlib import Path

from orch.attempts.doctor.base import DoctorBase
from orch.attempts.land.recovery import complete_landing, land_in_progress
from orch.errors import OrchError
from orch.git import Repository
from orch.models import Attempt


class LandingChecks(DoctorBase):
    def _interrupted_lands(self) -> None:
        for a in self.store.landings_in_progress():
            if a.workspace_host not in (None, self.settings.host_name):
                continue  # landed where its work is: that host's doctor looks
            try:
                repo = self.git.discover(Path(a.repository))
            except OrchError as exc:
                self._report("interrupted-land", a.id, exc.message, "none (report only)")
                continue
            if land_in_progress(repo, a, f"{self.actor} doctor"):
                continue  # a live land: it records or clears its own intent
            commit = (a.landing_commit or "")[:12]
            finding = self._report(
                "interrupted-land",
                a.id,
                f"{a.task_key}: a land into {(a.landing or {}).get('into')} ({commit}) was "
                "interrupted",
                "record it as landed if the target has its result, else clear the intent",
            )
            self._repair(finding, functools.partial(self._complete, repo, a))

    def _complete(self, repo: Repository, a: Attempt) -> None:
        complete_landing(self.store, self.git, repo, a, self.actor)
