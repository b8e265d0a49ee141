"""What every command shares: the error funnel, settings, the store, who is acting."""

from __future__ import annotations

import getpass
import os
import socket
from typing import TYPE_CHECKING, Any

import click

from orch.errors import OrchError

if TYPE_CHECKING:
    from orch.config import Settings
    from orch.store import Store

STATE_NAMES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out", "worker_gone")


class OrchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)


def settings_from_env(**overrides: Any) -> Settings:
    from orch.config import resolve

    return resolve(os.environ, overrides)


def open_store(settings: Settings) -> Store:
    from orch.store import open_store as _open

    store = _open(
        settings.database_url, settings.locks_dir, synchronous=settings.sqlite_synchronous
    )
    click.get_current_context().call_on_close(store.close)
    return store


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"
