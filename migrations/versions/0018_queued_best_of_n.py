"""Best-of-N through the queue: a submitted task names its workers (any number, in
order) and how many attempts its one dispatch makes, and keeps the attempts it made.

``queued_tasks.worker`` (one worker or none) becomes ``workers``, a JSON list: ``[]`` for
none, ``[w]`` for one. ``attempts`` is 1 for every task submitted before; ``attempt_ids``
(JSON, every attempt a best-of-N dispatch made) is null for them. A downgrade keeps the
first worker of each task and drops the rest; it is refused while a best-of-N task is
not done (an older orch would dispatch it as one attempt, or follow only the newest of
its attempts, retrying a lost one, without a word).

Alembic revision 0018, after 0017 (2026-12-07).
"""

import json

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0018", "0017"

_TASKS = sa.table(
    "queued_tasks",
    sa.column("id", sa.Integer()),
    sa.column("worker", sa.String(128)),
    sa.column("workers", sa.JSON()),
    sa.column("attempts", sa.Integer()),
    sa.column("state", sa.String(16)),
)


def upgrade() -> None:
    with op.batch_alter_table("queued_tasks") as batch:
        batch.add_column(sa.Column("workers", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("attempt_ids", sa.JSON(), nullable=True))
    conn = op.get_bind()
    named = conn.execute(
        sa.select(_TASKS.c.id, _TASKS.c.worker).where(_TASKS.c.worker.is_not(None))
    ).all()
    for task_id, worker in named:
        conn.execute(sa.update(_TASKS).where(_TASKS.c.id == task_id).values(workers=[worker]))
    conn.execute(sa.update(_TASKS).where(_TASKS.c.workers.is_(None)).values(workers=[]))
    with op.batch_alter_table("queued_tasks") as batch:
        batch.alter_column("workers", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("worker")


def downgrade() -> None:
    conn = op.get_bind()
    waiting = conn.execute(
        sa.select(sa.func.count())
        .select_from(_TASKS)
        .where(
            _TASKS.c.attempts > 1,
            _TASKS.c.state.in_(("ready", "dispatching", "dispatched")),
        )
    ).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} queued best-of-N task(s) are not done, which revision 0017 cannot "
            "follow: let their attempts end first"
        )
    with op.batch_alter_table("queued_tasks") as batch:
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))
    for task_id, workers in conn.execute(sa.select(_TASKS.c.id, _TASKS.c.workers)).all():
        listed = workers if isinstance(workers, list) else json.loads(workers or "[]")
        if listed:
            conn.execute(sa.update(_TASKS).where(_TASKS.c.id == task_id).values(worker=listed[0]))
    with op.batch_alter_table("queued_tasks") as batch:
        batch.drop_column("attempt_ids")
        batch.drop_column("attempts")
        batch.drop_column("workers")
