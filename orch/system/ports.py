"""Ports on this machine: probing, the ports file in a worktree, shell-safe exports.

Owns the sockets orch opens to probe (bound and closed at once, never listened on) and
the ``.orch/`` directory orch writes into a worktree.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from orch.errors import WorkspaceError, describe_os_error
from orch.models import PortBundle

# Ports browsers refuse to open (Chromium's and Firefox's restricted lists).
BROWSER_UNSAFE = frozenset(
    {
        1,
        7,
        9,
        11,
        13,
        15,
        17,
        19,
        20,
        21,
        22,
        23,
        25,
        37,
        42,
        43,
        53,
        69,
        77,
        79,
        87,
        95,
        101,
        102,
        103,
        104,
        109,
        110,
        111,
        113,
        115,
        117,
        119,
        123,
        135,
        137,
        139,
        143,
        161,
        179,
        389,
        427,
        465,
        512,
        513,
        514,
        515,
        526,
        530,
        531,
        532,
        540,
        548,
        554,
        556,
        563,
        587,
        601,
        636,
        989,
        990,
        993,
        995,
        1719,
        1720,
        1723,
        2049,
        3659,
        4045,
        4190,
        5060,
        5061,
        6000,
        6566,
        6665,
        6666,
        6667,
        6668,
        6669,
        6679,
        6697,
        10080,
    }
)
PORTS_DIR = ".orch"


def port_in_use(port: int) -> bool:
    """True if something on this machine holds ``port`` (any address, TCP)."""
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 here
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
        except OSError:
            return True
        finally:
            sock.close()
    return False


def block_usable(start: int, size: int) -> bool:
    """No port of the block is browser-unsafe or in use right now."""
    block = range(start, start + size)
    if any(p in BROWSER_UNSAFE for p in block):
        return False
    return not any(port_in_use(p) for p in block)


def env_name(slot: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in slot.upper())
    return f"ORCH_PORT_{cleaned}"


def sh_quote(value: str) -> str:
    """Always single-quoted (a ``'`` inside becomes ``'"'"'``): inert in sh, bash and zsh."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def export_lines(bundle: PortBundle) -> list[str]:
    """``export NAME='value'`` lines, safe to eval in sh, bash and zsh."""
    lines = [f"export {env_name(n)}={sh_quote(str(p))}" for n, p in bundle.ports.items()]
    lines.append(f"export ORCH_PORT_COUNT={sh_quote(str(bundle.size))}")
    return lines


def environment(bundle: PortBundle) -> dict[str, str]:
    env = {env_name(n): str(p) for n, p in bundle.ports.items()}
    env["ORCH_PORT_COUNT"] = str(bundle.size)
    return env


def write_ports_file(worktree: Path, bundle: PortBundle) -> Path:
    """Write ``.orch/ports.json`` and ``.orch/ports.env`` into the worktree (the caller
    keeps ``/.orch/`` out of git through the repository's ``info/exclude``)."""
    target = worktree / PORTS_DIR
    try:
        target.mkdir(exist_ok=True)
        data = {"start": bundle.start, "size": bundle.size, "ports": bundle.ports}
        (target / "ports.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        (target / "ports.env").write_text("\n".join(export_lines(bundle)) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write the ports file in {target}: {describe_os_error(exc)}"
        ) from exc
    return target / "ports.json"
