"""orch: run many coding-agent attempts on one repository at once.

The package root holds only the version, so that ``orch --help`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
