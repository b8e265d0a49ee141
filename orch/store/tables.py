"""The attempt store's tables, as SQLAlchemy Core (portable SQL types).

Core, not ORM mappings: mapping the classes cost a short-lived ``orch list`` more than the
query itself, and every store operation is a single statement or a compare-and-set anyway.
Non-optional columns say ``nullable=False``; ``tests/integration/test_schema.py`` checks
that the migrations produce exactly this schema on both backends.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

PARTIAL = "where"  # the key of a partial index's predicate in its ``info``


def _partial(name: str, column: str) -> Index:
    """An index of the rows where ``column`` is set (migration 0017 makes it partial).

    The predicate is kept in ``info``, not as ``sqlite_where``/``postgresql_where``:
    dialect keywords make SQLAlchemy import both dialect packages (PostgreSQL's with
    asyncio) when this module loads, 17 ms of every command. ``test_schema`` checks that
    the migrated store's index has exactly this predicate."""
    return Index(name, column, info={PARTIAL: f"{column} IS NOT NULL"})


def _when(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _attempt_ref(*, index: bool = False, unique: bool = False) -> Column[str]:
    return Column(
        "attempt_id",
        String(16),
        ForeignKey("attempts.id", ondelete="CASCADE"),
        nullable=False,
        index=index or None,
        unique=unique or None,
    )


attempts = Table(
    "attempts",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("task_key", String(128), nullable=False),
    Column("attempt_number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("workspace_status", String(32), nullable=False),
    Column("repository", Text, nullable=False),
    Column("base_ref", Text, nullable=False),
    Column("base_commit", String(64)),
    Column("branch_name", String(255)),
    Column("worktree_path", Text),
    Column("worker", String(128)),
    Column("payload_path", Text),
    Column("archive_path", Text),
    Column("phase", String(64)),
    Column("target_host", String(255)),
    Column("workspace_host", String(255)),
    Column("repository_url", Text),
    # how the worktree was checked out (None: before these were recorded)
    Column("sparse_paths", JSON),
    Column("submodules", Boolean),
    Column("lfs_skip_smudge", Boolean),
    Column("prompt", Text, nullable=False),
    Column("reason", Text),
    # the lease: a token that only grows (fencing), who holds it and until when
    Column("lease_token", Integer, nullable=False, default=0),
    _when("lease_expires_at"),
    _when("heartbeat_at"),
    Column("lease_holder", String(128)),
    # the worker that holds the lease (written by claims, cleared with the lease)
    Column("worker_host", String(255)),
    Column("worker_pid", Integer),
    Column("worker_started_at", Float),
    # the dispatch process while it provisions the workspace (written with the intent,
    # cleared when provisioning ends either way)
    Column("dispatcher_host", String(255)),
    Column("dispatcher_pid", Integer),
    Column("dispatcher_started_at", Float),
    Column("agent_pid", Integer),
    Column("agent_started_at", Float),
    Column("exit_code", Integer),
    Column("summary", Text),
    # the committed changes against base_commit, counted at changes_tip (recorded when the
    # branch moves, so that listing never asks git)
    Column("changes_tip", String(64)),
    Column("commits_ahead", Integer),
    Column("files_changed", Integer),
    Column("lines_added", Integer),
    Column("lines_removed", Integer),
    _when("changes_at"),
    # the land that took the attempt's work into a target branch: the target's new commit,
    # the attempt's commit that landed (cleanup counts it saved even after a squash), the
    # target branch, the strategy, who and when
    Column("landed_commit", String(64)),
    Column("landed_tip", String(64)),
    Column("landed_into", String(255)),
    Column("landed_strategy", String(16)),
    Column("landed_by", String(255)),
    _when("landed_at"),
    # a land in progress: the result commit it will move the target to (written before the
    # target moves; doctor completes or clears it after a crash) and what else it said
    Column("landing_commit", String(64)),
    Column("landing", JSON),
    # the pull request opened for the attempt (orch pr): its URL, number, state (open,
    # merged, closed) and what the CI loop already forwarded to the agent (check runs,
    # comment ids, how many CI follow-ups, when the next may go), so a restart never
    # repeats a follow-up
    Column("pr_url", Text),
    Column("pr_number", Integer),
    Column("pr_state", String(16)),
    Column("pr_watch", JSON),
    _when("created_at", nullable=False),
    _when("updated_at", nullable=False),
    _when("finished_at"),
    UniqueConstraint("repository", "task_key", "attempt_number", name="uq_attempt_number"),
    Index("ix_attempts_state", "state"),
    Index("ix_attempts_task_key", "task_key"),
    Index("ix_attempts_claim", "state", "created_at"),
    # the everyday paths, independent of history (0015): a page of the listing, attempts
    # by workspace status and state (the ended ones by when they ended), by branch, by
    # worktree
    Index("ix_attempts_listing", "created_at", "id"),
    Index("ix_attempts_workspace", "workspace_status", "state", "finished_at"),
    Index("ix_attempts_branch", "branch_name"),
    Index("ix_attempts_worktree", "worktree_path"),
    # the few attempts each loop cycle and each doctor look at, among all (0017): those
    # with a pull request and those with a land in progress; partial, so that the
    # history's rows (NULL there) cost them nothing
    _partial("ix_attempts_pr_state", "pr_state"),
    _partial("ix_attempts_landing", "landing_commit"),
)

attempt_events = Table(
    "attempt_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _attempt_ref(index=True),
    Column("kind", String(32), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("detail", JSON, nullable=False),
    _when("created_at", nullable=False),
    # the state the event moved its attempt into (None: it moved none, or written before
    # 0010), so that a sink's ``on = ["succeeded"]`` is a plain comparison
    Column("state", String(16)),
    Index("ix_attempt_events_kind", "kind", "attempt_id"),
)

# the outbox's bookkeeping: one row per event and sink that subscribes to it, delivered
# once (``delivered``), or failed for good and shown until retried by hand
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "event_id",
        Integer,
        ForeignKey("attempt_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _attempt_ref(),
    Column("sink", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    _when("next_try_at", nullable=False),
    # a deliverer's claim: until when, and the token its result must carry (a deliverer
    # killed mid-delivery leaves a claim that expires; the next one delivers again)
    _when("claimed_until"),
    Column("claim_token", Integer, nullable=False, default=0),
    _when("delivered_at"),
    Column("last_error", Text),
    _when("created_at", nullable=False),
    UniqueConstraint("event_id", "sink", name="uq_event_delivery"),
    Index("ix_event_deliveries_due", "sink", "state", "next_try_at"),
    Index("ix_event_deliveries_order", "attempt_id", "sink", "event_id"),
    # the deliveries that failed for good, whatever the sink (0016): the dashboard's change
    # mark counts them every 0.5 s and its attention list reads them, without passing over
    # the delivered ones, one per event per sink of a year of history
    Index("ix_event_deliveries_state", "state", "event_id"),
)

attempt_messages = Table(
    "attempt_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _attempt_ref(index=True),
    Column("body", Text, nullable=False),
    Column("actor", String(255), nullable=False),
    _when("created_at", nullable=False),
    _when("delivered_at"),
    Column("run_number", Integer),
)

attempt_runs = Table(
    "attempt_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _attempt_ref(index=True),
    Column("number", Integer, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("command", JSON, nullable=False),
    Column("log_path", Text),
    Column("pid", Integer),
    _when("started_at", nullable=False),
    _when("ended_at"),
    Column("exit_code", Integer),
    # what ran: the agent (or a follow-up to it), or the repository's check command
    Column("kind", String(16), nullable=False, default="agent", server_default="agent"),
    Column("timed_out", Boolean, nullable=False, default=False, server_default=false()),
    # what the agent reported it consumed (``orch.attempts.usage``); NULL: not reported
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cached_tokens", BigInteger),
    Column("cost_usd", Float),
    Column("model", String(255)),
    UniqueConstraint("attempt_id", "number", name="uq_run_number"),
)

port_leases = Table(
    "port_leases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _attempt_ref(unique=True),
    Column("host", String(255), nullable=False),
    Column("block_start", Integer, nullable=False),
    Column("block_size", Integer, nullable=False),
    Column("slots", JSON, nullable=False),
    _when("leased_at", nullable=False),
    UniqueConstraint("host", "block_start", name="uq_port_block"),
)

# the attempt whose worktree and branch a task's later phases reuse (one per task); the
# branch and path are the attempt's own columns, never copied here
task_workspaces = Table(
    "task_workspaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository", Text, nullable=False),
    Column("task_key", String(128), nullable=False),
    _attempt_ref(index=True),
    _when("updated_at", nullable=False),
    UniqueConstraint("repository", "task_key", name="uq_task_workspace"),
)

# a task submitted with ``orch submit``, waiting for ``orch serve`` to dispatch it
queued_tasks = Table(
    "queued_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_key", String(128), nullable=False),
    Column("repository", Text, nullable=False),
    Column("base_ref", Text),
    Column("prompt", Text, nullable=False),
    # the workers named, in order (the attempts go to them in turn); empty: any worker
    Column("workers", JSON, nullable=False),
    # how many attempts one dispatch makes (best-of-N: N, from one base commit)
    Column("attempts", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt_id", String(16)),  # the attempt it follows (best-of-N: the first made)
    # best-of-N: every attempt its dispatch made, in order (null: a task of one attempt)
    Column("attempt_ids", JSON),
    Column("reason", Text),
    Column("actor", String(255), nullable=False),
    _when("created_at", nullable=False),
    _when("updated_at", nullable=False),
    Index("ix_queued_tasks_state", "state", "id"),
)

# a land queued with ``orch land --queue`` (or the dashboard's Land button), landed by the
# loop of ``orch serve`` in order, with its result kept for the operator to see
land_queue = Table(
    "land_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _attempt_ref(index=True),
    Column("repository", Text, nullable=False),
    Column("host", String(255), nullable=False),  # whose loop lands it
    Column("into_branch", String(255)),
    Column("strategy", String(16), nullable=False),
    Column("message", Text),
    Column("run_check", Boolean, nullable=False),
    Column("keep", Boolean, nullable=False),
    Column("resolve", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("result", String(32)),
    Column("target", String(255)),
    Column("landed_commit", String(64)),
    Column("paths", JSON),
    Column("exit_code", Integer),
    Column("reason", Text),
    Column("actor", String(255), nullable=False),
    _when("created_at", nullable=False),
    _when("updated_at", nullable=False),
    Index("ix_land_queue_state", "state", "id"),
)
