"""orch/sinks.py through orch/config.py: [[hooks]], [[webhooks]] and [notify] read from the
user config and a repository's orch.toml, each validated with unknown keys refused; the
event kinds an event answers to; the webhook signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pytest

from orch.attempts.events.document import document, hook_environment, notification
from orch.config import resolve
from orch.errors import ConfigError
from orch.models import AttemptEvent, State, event_state
from orch.repo_config import load_repo_config
from orch.sinks import NOTIFY_DEFAULT_ON
from orch.system.delivery import sign
from tests.support.records import an_attempt

SINKS = """
[[hooks]]
command = "notify-team"
on = ["succeeded", "failed"]

[[hooks]]
name = "chat"
command = "post-to-chat"
on = ["*"]
timeout = 5

[[webhooks]]
url = "https://example.invalid/orch"
secret_env = "ORCH_HOOK_SECRET"
on = ["worker_gone", "landed"]

[notify]
"""


def test_the_user_config_holds_sinks_for_every_repository(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lease_ttl = 12\n" + SINKS)
    settings = resolve({"HOME": str(tmp_path), "ORCH_CONFIG": str(config)})
    assert settings.lease_ttl == 12.0
    hook, chat, hook_web, notify = settings.sinks
    assert (hook.kind, hook.command, hook.on) == ("hook", "notify-team", {"succeeded", "failed"})
    assert hook.name.startswith("hook-") and hook.timeout == 30.0
    assert (chat.name, chat.timeout, chat.subscribes(frozenset({"anything"}))) == (
        "chat",
        5.0,
        True,
    )
    assert (hook_web.kind, hook_web.secret, hook_web.secret_env) == (
        "webhook",
        None,
        "ORCH_HOOK_SECRET",
    )
    assert notify.on == frozenset(NOTIFY_DEFAULT_ON)
    assert all(s.scope is None and s.source == config for s in settings.sinks)


def test_a_repository_config_holds_sinks_for_its_own_events(tmp_path: Path) -> None:
    (tmp_path / "orch.toml").write_text("[review]\ncheck = 'make test'\n" + SINKS)
    config = load_repo_config(tmp_path)
    assert config.check == "make test"
    assert len(config.sinks) == 4
    assert {s.scope for s in config.sinks} == {str(tmp_path)}


def test_a_derived_name_follows_the_command_not_its_place(tmp_path: Path) -> None:
    """The name is half of the idempotency key: the same sink keeps it."""
    (tmp_path / "orch.toml").write_text(SINKS)
    first = load_repo_config(tmp_path).sinks[0].name
    (tmp_path / "orch.toml").write_text("[workspace]\nkeep_failed = true\n" + SINKS)
    assert load_repo_config(tmp_path).sinks[0].name == first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[hooks]]\ncommand = 'x'\n", "needs on = "),
        ("[[hooks]]\non = ['failed']\n", "needs command"),
        ("[[hooks]]\ncommand = 'x'\non = ['failed']\ncmd = 'y'\n", "unknown key(s) in [[hooks]]"),
        ("[[hooks]]\ncommand = 'x'\non = []\n", "non-empty list"),
        ("[[hooks]]\ncommand = 'x'\non = ['Failed!']\n", "is no event kind"),
        ("[[hooks]]\ncommand = 'x'\non = ['failed']\ntimeout = 0\n", "must be positive"),
        ("[[hooks]]\ncommand = 'x'\non = ['failed']\ntimeout = '5'\n", "number of seconds"),
        ("[hooks]\ncommand = 'x'\n", "write [[hooks]]"),
        ("[[webhooks]]\nurl = 'ftp://x'\non = ['failed']\n", "needs url"),
        (
            "[[webhooks]]\nurl = 'http://x'\non = ['failed']\nsecret = 'a'\nsecret_env = 'B'\n",
            "not both",
        ),
        ("[[webhooks]]\nurl = 'http://x'\non = ['failed']\nsecret_env = 'A B'\n", "secret_env"),
        ("[[notify]]\non = ['failed']\n", "write [notify]"),
        ("[notify]\nsound = true\n", "unknown key(s) in [notify]"),
        (
            "[[hooks]]\nname = 'a'\ncommand = 'x'\non = ['failed']\n"
            "[[hooks]]\nname = 'a'\ncommand = 'y'\non = ['failed']\n",
            "used twice",
        ),
        ("[[hooks]]\nname = 'a b'\ncommand = 'x'\non = ['failed']\n", "may hold letters"),
    ],
)
def test_a_bad_sink_is_one_config_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "orch.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_repo_config(tmp_path)
    assert message in str(caught.value)
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError):
        resolve({"HOME": str(tmp_path), "ORCH_CONFIG": str(config)})


@pytest.mark.parametrize(
    ("kind", "detail", "state"),
    [
        ("created", {"state": "queued"}, State.QUEUED),
        ("claimed", {}, State.RUNNING),
        ("finished", {"state": "timed_out"}, State.TIMED_OUT),
        ("cancelled", {}, State.CANCELLED),
        ("worker_gone", {}, State.WORKER_GONE),
        ("provisioning_failed", {}, State.FAILED),
        ("released", {}, State.QUEUED),
        ("provisioned", {}, None),
        ("landed", {"state": "succeeded"}, None),  # names a state, moves none
    ],
)
def test_the_state_an_event_moved_its_attempt_into(
    kind: str, detail: dict[str, str], state: State | None
) -> None:
    assert event_state(kind, detail) == state


def test_an_event_answers_to_its_kind_and_its_state() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    finished = AttemptEvent(1, "a1", "finished", "w", {"state": "failed"}, now, State.FAILED)
    assert finished.kinds == {"finished", "failed"}
    attempt = an_attempt(id="a1", task_key="fix-it", state=State.FAILED)
    doc = document(finished, attempt)
    env = hook_environment(doc, "1:hook-x")
    assert (env["ORCH_EVENT"], env["ORCH_STATE"], env["ORCH_DELIVERY"]) == (
        "finished",
        "failed",
        "1:hook-x",
    )
    assert env["ORCH_TASK_KEY"] == "fix-it"
    assert notification(doc)[0] == "orch: fix-it failed"


def test_the_signature_is_githubs() -> None:
    body = b'{"id": 1}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign("key", body) == f"sha256={expected}"
