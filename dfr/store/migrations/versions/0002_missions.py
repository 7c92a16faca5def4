"""Missions: missions, mission_events (append-only, enforced by triggers), mission_track.

Revision ID: 0002
Revises: 0001
Create Date: 2024-05-08

As in 0001, the types and the list of states are spelled out rather than imported from the code: a
revision is a snapshot of the schema at one point in time and must not change when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_APPEND_ONLY = "mission_events is append-only"
_STATES = (
    "'pending_approval', 'queued', 'launching', 'en_route', 'on_scene', 'returning', "
    "'landed', 'aborted', 'failed', 'declined'"
)


def upgrade() -> None:
    op.create_table(
        "missions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("incident_id", sa.String(36), nullable=False),
        sa.Column("drone_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("target_lat", sa.Float(), nullable=False),
        sa.Column("target_lon", sa.Float(), nullable=False),
        sa.Column("standoff", _JSON, nullable=True),
        sa.Column("altitude_m", sa.Float(), nullable=False),
        sa.Column("planned_route", _JSON, nullable=False),
        sa.Column("expected_time_to_scene_s", sa.Float(), nullable=True),
        sa.Column("achieved_time_to_scene_s", sa.Float(), nullable=True),
        sa.Column("launched_at", _TIME, nullable=True),
        sa.Column("on_scene_at", _TIME, nullable=True),
        sa.Column("landed_at", _TIME, nullable=True),
        sa.Column("decision", _JSON, nullable=True),
        sa.Column("pilot_control", sa.Boolean(), nullable=False),
        sa.Column("pilot_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_missions"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_missions_incident_id_incidents"),
        sa.CheckConstraint(f"state IN ({_STATES})", name=op.f("ck_missions_state_values")),
        sa.CheckConstraint("altitude_m > 0", name=op.f("ck_missions_altitude_positive")),
    )
    op.create_index("ix_missions_incident_id", "missions", ["incident_id"])
    op.create_index("ix_missions_state_created_at", "missions", ["state", "created_at"])
    op.create_index("ix_missions_created_at", "missions", ["created_at"])

    op.create_table(
        "mission_events",
        sa.Column("id", _ROW_ID, nullable=False, autoincrement=True),
        sa.Column("mission_id", sa.String(36), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mission_events"),
        sa.ForeignKeyConstraint(
            ["mission_id"], ["missions.id"], name="fk_mission_events_mission_id_missions"
        ),
        sa.CheckConstraint(f"from_state IN ({_STATES})", name=op.f("ck_mission_events_from_state_values")),
        sa.CheckConstraint(f"to_state IN ({_STATES})", name=op.f("ck_mission_events_to_state_values")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mission_events_mission_id_id", "mission_events", ["mission_id", "id"])

    op.create_table(
        "mission_track",
        sa.Column("id", _ROW_ID, nullable=False, autoincrement=True),
        sa.Column("mission_id", sa.String(36), nullable=False),
        sa.Column("t", _TIME, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("speed", sa.Float(), nullable=True),
        sa.Column("mode", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mission_track"),
        sa.ForeignKeyConstraint(["mission_id"], ["missions.id"], name="fk_mission_track_mission_id_missions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mission_track_mission_id_t", "mission_track", ["mission_id", "t"])

    # The timeline is evidence of what a drone did; like audit_log, it must not be rewritable.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION dfr_mission_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER mission_events_append_only BEFORE UPDATE OR DELETE ON mission_events "
            "FOR EACH ROW EXECUTE FUNCTION dfr_mission_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER mission_events_no_truncate BEFORE TRUNCATE ON mission_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION dfr_mission_events_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER mission_events_no_{event.lower()} BEFORE {event} ON mission_events "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS mission_events_no_truncate ON mission_events")
        op.execute("DROP TRIGGER IF EXISTS mission_events_append_only ON mission_events")
        op.execute("DROP FUNCTION IF EXISTS dfr_mission_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS mission_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS mission_events_no_delete")
    op.drop_index("ix_mission_track_mission_id_t", table_name="mission_track")
    op.drop_table("mission_track")
    op.drop_index("ix_mission_events_mission_id_id", table_name="mission_events")
    op.drop_table("mission_events")
    op.drop_index("ix_missions_created_at", table_name="missions")
    op.drop_index("ix_missions_state_created_at", table_name="missions")
    op.drop_index("ix_missions_incident_id", table_name="missions")
    op.drop_table("missions")
