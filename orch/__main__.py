"""Allow ``python -m orch``."""

from __future__ import annotations

from orch.cli import main

main()
