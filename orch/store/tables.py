"""ORM tables of the attempt store (typed ``Mapped[]`` models, portable SQL types)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AttemptRow(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("repository", "task_key", "attempt_number", name="uq_attempt_number"),
        Index("ix_attempts_state", "state"),
        Index("ix_attempts_task_key", "task_key"),
        Index("ix_attempts_claim", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    task_key: Mapped[str] = mapped_column(String(128))
    attempt_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    workspace_status: Mapped[str] = mapped_column(String(32))
    repository: Mapped[str] = mapped_column(Text)
    base_ref: Mapped[str] = mapped_column(Text)
    base_commit: Mapped[str | None] = mapped_column(String(64))
    branch_name: Mapped[str | None] = mapped_column(String(255))
    worktree_path: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(128))
    payload_path: Mapped[str | None] = mapped_column(Text)
    archive_path: Mapped[str | None] = mapped_column(Text)
    phase: Mapped[str | None] = mapped_column(String(64))
    target_host: Mapped[str | None] = mapped_column(String(255))
    workspace_host: Mapped[str | None] = mapped_column(String(255))
    repository_url: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    # the lease: a token that only grows (fencing), who holds it and until when
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    worker_host: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    worker_started_at: Mapped[float | None] = mapped_column(Float)
    agent_pid: Mapped[int | None] = mapped_column(Integer)
    agent_started_at: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AttemptEventRow(Base):
    __tablename__ = "attempt_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MessageRow(Base):
    __tablename__ = "attempt_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    run_number: Mapped[int | None] = mapped_column(Integer)


class RunRow(Base):
    __tablename__ = "attempt_runs"
    __table_args__ = (UniqueConstraint("attempt_id", "number", name="uq_run_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("attempts.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    command: Mapped[list[str]] = mapped_column(JSON)
    log_path: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    exit_code: Mapped[int | None] = mapped_column(Integer)


class PortLeaseRow(Base):
    __tablename__ = "port_leases"
    __table_args__ = (UniqueConstraint("host", "block_start", name="uq_port_block"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("attempts.id", ondelete="CASCADE"), unique=True
    )
    host: Mapped[str] = mapped_column(String(255))
    block_start: Mapped[int] = mapped_column(Integer)
    block_size: Mapped[int] = mapped_column(Integer)
    slots: Mapped[dict[str, int]] = mapped_column(JSON)
    leased_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TaskWorkspaceRow(Base):
    """Which worktree and branch a task's phases reuse (one per task, one task per branch)."""

    __tablename__ = "task_workspaces"
    __table_args__ = (
        UniqueConstraint("repository", "task_key", name="uq_task_workspace"),
        UniqueConstraint("repository", "branch_name", name="uq_task_branch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(Text)
    task_key: Mapped[str] = mapped_column(String(128))
    branch_name: Mapped[str] = mapped_column(String(255))
    worktree_path: Mapped[str] = mapped_column(Text)
    attempt_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
