"""SQLite's schema as numbered migrations; applied ones are recorded in `migrations`."""

from __future__ import annotations

from leadrelay.search import BUCKET_BITS
from leadrelay.speed import bucket_sql

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE providers (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );

        CREATE TABLE tokens (
            id           INTEGER PRIMARY KEY,
            token_hash   TEXT NOT NULL UNIQUE,      -- sha256 of the token, never the token
            prefix       TEXT NOT NULL,             -- first characters, to tell tokens apart
            role         TEXT NOT NULL CHECK (role IN ('admin', 'provider')),
            provider_id  INTEGER REFERENCES providers(id),
            created_at   TEXT NOT NULL,
            revoked_at   TEXT,
            CHECK ((role = 'provider') = (provider_id IS NOT NULL))
        );

        CREATE TABLE leads (
            id           INTEGER PRIMARY KEY,
            name         TEXT NOT NULL,
            email        TEXT,
            phone        TEXT,
            status       TEXT NOT NULL,
            provider_id  INTEGER REFERENCES providers(id),
            source       TEXT,
            notes        TEXT,
            external_id  TEXT,
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            last_seq     INTEGER NOT NULL DEFAULT 0   -- seq of the lead's newest event
        );
        CREATE INDEX leads_by_provider ON leads (provider_id, id);
        CREATE INDEX leads_by_status ON leads (status, id);

        CREATE TABLE settings (
            key         TEXT PRIMARY KEY,
            value       TEXT NOT NULL,              -- JSON
            updated_at  TEXT NOT NULL
        );

        -- A key seen once maps to the lead it created; the PRIMARY KEY is what makes a
        -- duplicate lose a race, not a check before the insert.
        CREATE TABLE idempotency_keys (
            key         TEXT PRIMARY KEY,
            lead_id     INTEGER NOT NULL REFERENCES leads(id),
            created_at  REAL NOT NULL               -- unix time, for expiry
        );

        -- The outbox: every event to broadcast, written in the same transaction as its lead.
        CREATE TABLE events (
            id               INTEGER PRIMARY KEY,   -- the events API cursor (?after=ID)
            event_id         TEXT NOT NULL UNIQUE,  -- UUID, stable across redeliveries
            lead_id          INTEGER NOT NULL REFERENCES leads(id),
            seq              INTEGER NOT NULL,
            type             TEXT NOT NULL,         -- Pusher event name
            channels         TEXT NOT NULL,         -- JSON list
            provider_id      INTEGER,               -- the provider channel, if any
            payload          TEXT NOT NULL,         -- JSON data exactly as broadcast
            socket_id        TEXT,                  -- X-Socket-ID to exclude (toOthers)
            state            TEXT NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  REAL NOT NULL,         -- unix time
            last_error       TEXT,
            created_at       REAL NOT NULL,         -- unix time of the commit's transaction
            delivered_at     REAL,
            UNIQUE (lead_id, seq)
        );
        CREATE INDEX events_pending ON events (id) WHERE state = 'pending';
        CREATE INDEX events_dead ON events (id) WHERE state = 'dead';
        CREATE INDEX events_by_provider ON events (provider_id, id);
        """,
    ),
    (
        2,
        """
        -- The outbox's counts, kept by triggers in every transaction that changes an event,
        -- so that /metrics and `outbox status` read four rows instead of scanning the table.
        -- 'retrying' counts pending events that have failed at least once.
        CREATE TABLE outbox_counts (
            name  TEXT PRIMARY KEY,
            n     INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO outbox_counts (name, n)
            SELECT 'pending', count(*) FROM events WHERE state = 'pending'
            UNION ALL SELECT 'delivered', count(*) FROM events WHERE state = 'delivered'
            UNION ALL SELECT 'dead', count(*) FROM events WHERE state = 'dead'
            UNION ALL SELECT 'retrying', count(*) FROM events
                WHERE state = 'pending' AND attempts > 0;

        CREATE TRIGGER outbox_count_insert AFTER INSERT ON events BEGIN
            UPDATE outbox_counts SET n = n + 1 WHERE name = NEW.state;
        END;
        CREATE TRIGGER outbox_count_insert_retrying AFTER INSERT ON events
        WHEN NEW.state = 'pending' AND NEW.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n + 1 WHERE name = 'retrying';
        END;
        CREATE TRIGGER outbox_count_update AFTER UPDATE OF state, attempts ON events
        WHEN OLD.state != NEW.state OR (OLD.attempts > 0) != (NEW.attempts > 0) BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = OLD.state AND OLD.state != NEW.state;
            UPDATE outbox_counts SET n = n + 1 WHERE name = NEW.state AND OLD.state != NEW.state;
            UPDATE outbox_counts
                SET n = n - (OLD.state = 'pending' AND OLD.attempts > 0)
                          + (NEW.state = 'pending' AND NEW.attempts > 0)
                WHERE name = 'retrying';
        END;
        CREATE TRIGGER outbox_count_delete AFTER DELETE ON events BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = OLD.state;
        END;
        CREATE TRIGGER outbox_count_delete_retrying AFTER DELETE ON events
        WHEN OLD.state = 'pending' AND OLD.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = 'retrying';
        END;

        -- When a lead's personal fields were erased (DELETE /api/admin/leads/{id}).
        ALTER TABLE leads ADD COLUMN erased_at TEXT;
        """,
    ),
    (
        3,
        """
        -- Leases: one holder at a time, for as long as it renews (Tx.take_lease).  The relay
        -- holds 'relay', so that two daemons on one database never both relay.
        CREATE TABLE leases (
            name         TEXT PRIMARY KEY,
            owner        TEXT NOT NULL,             -- host:pid of the holding daemon
            info         TEXT NOT NULL,             -- JSON: host, serve_pid, relay_pid
            acquired_at  REAL NOT NULL,             -- unix times
            renewed_at   REAL NOT NULL,
            expires_at   REAL NOT NULL
        );
        """,
    ),
    (
        4,
        # The status webhook (a CRM's own id for a lead, and when it changed it there).
        # external_id becomes unique among leads; a database that already holds duplicates
        # keeps them (nothing is merged: doctor reports them): the first lead of each keeps
        # its external_id as the CRM's key (external_id_dup = 0), each later one has its own
        # id in external_id_dup, so the unique index holds over both columns.
        """
        ALTER TABLE leads ADD COLUMN external_id_dup INTEGER NOT NULL DEFAULT 0;
        -- changed_at of the newest change applied from the CRM, in microseconds since the
        -- Unix epoch (UTC)
        ALTER TABLE leads ADD COLUMN crm_changed_at INTEGER;
        UPDATE leads SET external_id_dup = id WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (PARTITION BY external_id ORDER BY id) AS n
                FROM leads WHERE external_id IS NOT NULL
            ) WHERE n > 1
        );
        CREATE UNIQUE INDEX leads_by_external_id ON leads (external_id, external_id_dup)
            WHERE external_id IS NOT NULL;
        -- doctor's list of them, without a scan (empty unless there were duplicates)
        CREATE INDEX leads_external_id_dups ON leads (external_id) WHERE external_id_dup != 0;
        -- what a status webhook answered, {"applied", "reason"}, for its replay (JSON; NULL
        -- for a lead's key, whose replay is the lead)
        ALTER TABLE idempotency_keys ADD COLUMN outcome TEXT;
        """,
    ),
    (
        5,
        """
        -- Who is watching: Pusher's channel_occupied / channel_vacated webhooks of a
        -- provider's channel. presence_ms is the webhook's own time, so a late, older
        -- webhook does not undo a newer one.
        ALTER TABLE providers ADD COLUMN watching INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE providers ADD COLUMN last_seen TEXT;
        ALTER TABLE providers ADD COLUMN presence_ms INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        6,
        """
        -- The next event id (Tx.write_events): SQLite's rowid would hand out the largest id
        -- again once pruning deleted it, and a client whose cursor is past it would never
        -- see the new event.  Its floor: every id given out, pruned or not.
        CREATE TABLE event_ids (n INTEGER NOT NULL);
        INSERT INTO event_ids (n) SELECT max(
            coalesce((SELECT max(id) FROM events), 0),
            coalesce((SELECT json_extract(value, '$.pruned_through') FROM settings
                      WHERE key = 'retention'), 0));
        """,
    ),
    (
        7,
        """
        -- The relay's wake socket is named after this random id (relay/wake.py): a name
        -- every local user sees, so it must say nothing of the database or its URL.
        INSERT INTO settings (key, value, updated_at)
            VALUES ('wake_id', '"' || lower(hex(randomblob(16))) || '"',
                    strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            ON CONFLICT (key) DO NOTHING;
        """,
    ),
    (
        8,
        # Pusher's HTTP API (pusher_api): an app's triggers are stored as events of their
        # own, one per channel, with no lead, ordered per channel as a lead's are per lead
        # (store/ordering.py's ORDER_KEY).  `events.lead_id` must become nullable, which SQLite
        # cannot do in place: the table is rebuilt (SQLite's documented twelve steps, less
        # those no other table needs: nothing refers to events; foreign keys are off during
        # migrations, connection.py).  Its cost is one copy of every stored event, inside
        # the migration's transaction, and the old pages zeroed (secure_delete: erased
        # personal data must not survive in them): about 24 s and twice the table's size
        # on disk for a million events here (docs/operations.md, Upgrading); retention
        # keeps the table small.
        """
        -- A channel an app triggered on: its last_seq is the seq of its newest event, taken
        -- under the row's lock as a lead's is (Tx.take_channel_seqs).
        CREATE TABLE pusher_channels (
            id        INTEGER PRIMARY KEY,
            name      TEXT NOT NULL UNIQUE,
            last_seq  INTEGER NOT NULL DEFAULT 0
        );

        DROP TRIGGER outbox_count_insert;
        DROP TRIGGER outbox_count_insert_retrying;
        DROP TRIGGER outbox_count_update;
        DROP TRIGGER outbox_count_delete;
        DROP TRIGGER outbox_count_delete_retrying;

        -- the unique indexes are built after the copy, from sorted rows (a third of the
        -- time of keeping them up row by row); they are what UNIQUE made before
        CREATE TABLE events_rebuilt (
            id               INTEGER PRIMARY KEY,
            event_id         TEXT NOT NULL,
            lead_id          INTEGER REFERENCES leads(id),          -- a lead's event
            seq              INTEGER NOT NULL,
            type             TEXT NOT NULL,
            channels         TEXT NOT NULL,
            provider_id      INTEGER,
            payload          TEXT NOT NULL,  -- a Pusher API event's data string as sent
            socket_id        TEXT,
            state            TEXT NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'delivered', 'dead')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  REAL NOT NULL,
            last_error       TEXT,
            created_at       REAL NOT NULL,
            delivered_at     REAL,
            channel_id       INTEGER REFERENCES pusher_channels(id), -- or a Pusher API event's
            CHECK ((lead_id IS NULL) != (channel_id IS NULL))
        );
        INSERT INTO events_rebuilt (id, event_id, lead_id, seq, type, channels, provider_id,
                payload, socket_id, state, attempts, next_attempt_at, last_error, created_at,
                delivered_at)
            SELECT id, event_id, lead_id, seq, type, channels, provider_id, payload,
                socket_id, state, attempts, next_attempt_at, last_error, created_at,
                delivered_at
            FROM events ORDER BY id;
        DROP TABLE events;
        ALTER TABLE events_rebuilt RENAME TO events;
        CREATE UNIQUE INDEX events_by_event_id ON events (event_id);
        CREATE UNIQUE INDEX events_by_lead_seq ON events (lead_id, seq);
        CREATE UNIQUE INDEX events_by_channel_seq ON events (channel_id, seq);
        CREATE INDEX events_pending ON events (id) WHERE state = 'pending';
        CREATE INDEX events_dead ON events (id) WHERE state = 'dead';
        CREATE INDEX events_by_provider ON events (provider_id, id);
        -- the relay's ordering predicate (store/ordering.py's UNBLOCKED) probes this
        CREATE INDEX events_pending_by_order ON events (coalesce(lead_id, -channel_id), seq)
            WHERE state = 'pending';

        -- migration 2's counters, and the same for the Pusher API's events alone (api_*)
        INSERT INTO outbox_counts (name, n)
            SELECT 'api_pending', 0 UNION ALL SELECT 'api_delivered', 0
            UNION ALL SELECT 'api_dead', 0 UNION ALL SELECT 'api_retrying', 0;
        CREATE TRIGGER outbox_count_insert AFTER INSERT ON events BEGIN
            UPDATE outbox_counts SET n = n + 1
                WHERE name = NEW.state OR (NEW.lead_id IS NULL AND name = 'api_' || NEW.state);
        END;
        CREATE TRIGGER outbox_count_insert_retrying AFTER INSERT ON events
        WHEN NEW.state = 'pending' AND NEW.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n + 1
                WHERE name = 'retrying' OR (NEW.lead_id IS NULL AND name = 'api_retrying');
        END;
        CREATE TRIGGER outbox_count_update AFTER UPDATE OF state, attempts ON events
        WHEN OLD.state != NEW.state OR (OLD.attempts > 0) != (NEW.attempts > 0) BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE OLD.state != NEW.state
                AND (name = OLD.state OR (OLD.lead_id IS NULL AND name = 'api_' || OLD.state));
            UPDATE outbox_counts SET n = n + 1 WHERE OLD.state != NEW.state
                AND (name = NEW.state OR (NEW.lead_id IS NULL AND name = 'api_' || NEW.state));
            UPDATE outbox_counts
                SET n = n - (OLD.state = 'pending' AND OLD.attempts > 0)
                          + (NEW.state = 'pending' AND NEW.attempts > 0)
                WHERE name = 'retrying' OR (NEW.lead_id IS NULL AND name = 'api_retrying');
        END;
        CREATE TRIGGER outbox_count_delete AFTER DELETE ON events BEGIN
            UPDATE outbox_counts SET n = n - 1
                WHERE name = OLD.state OR (OLD.lead_id IS NULL AND name = 'api_' || OLD.state);
        END;
        CREATE TRIGGER outbox_count_delete_retrying AFTER DELETE ON events
        WHEN OLD.state = 'pending' AND OLD.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n - 1
                WHERE name = 'retrying' OR (OLD.lead_id IS NULL AND name = 'api_retrying');
        END;
        """,
    ),
    (
        9,
        # The relay walks the oldest pending lead events apart from the channels' (store/
        # ordering.py): a channel's backlog after an outage is not walked to find a lead's.
        """
        CREATE INDEX events_pending_leads ON events (id)
            WHERE state = 'pending' AND lead_id IS NOT NULL;
        """,
    ),
    (
        10,
        # Search (leadrelay/search.py): a lead's keys, folded in Python, in buckets of lead
        # ids.  They are written off the intake's path: a new lead is only marked pending
        # (the column's default and an entry at the end of a small partial index), and the
        # indexer (store/search_index.py) writes the keys of many leads a transaction.
        # Changing a field a key comes from (erasure) deletes the lead's keys at once, in
        # the same transaction, and marks it pending again.
        f"""
        ALTER TABLE leads ADD COLUMN search_pending INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX leads_search_pending ON leads (id) WHERE search_pending = 1;
        CREATE TABLE search_keys (
            bucket   INTEGER NOT NULL,          -- lead_id >> {BUCKET_BITS}
            key      TEXT NOT NULL,
            lead_id  INTEGER NOT NULL,
            PRIMARY KEY (bucket, key, lead_id)
        ) WITHOUT ROWID;
        CREATE TRIGGER search_keys_forget AFTER UPDATE OF name, email, phone, external_id
        ON leads BEGIN
            DELETE FROM search_keys
                WHERE bucket = NEW.id >> {BUCKET_BITS} AND lead_id = NEW.id;
            UPDATE leads SET search_pending = 1 WHERE id = NEW.id;
        END;

        -- The day at a glance (GET /api/admin/stats), kept by triggers as leads and events
        -- are written, so that a request reads a few small rows: leads by provider (0:
        -- none) and status; leads created and assigned a UTC hour ('2026-12-06T21') and
        -- provider; and speed to contact (leadrelay/speed.py) a UTC day and provider.
        CREATE TABLE lead_counts (
            provider_id  INTEGER NOT NULL,
            status       TEXT NOT NULL,
            n            INTEGER NOT NULL,
            PRIMARY KEY (provider_id, status)
        ) WITHOUT ROWID;
        CREATE TABLE lead_hours (
            hour         TEXT NOT NULL,
            provider_id  INTEGER NOT NULL,
            created      INTEGER NOT NULL DEFAULT 0,
            assigned     INTEGER NOT NULL DEFAULT 0,  -- lead.assigned to this provider
            PRIMARY KEY (hour, provider_id)
        ) WITHOUT ROWID;
        CREATE TABLE contact_times (
            day          TEXT NOT NULL,
            provider_id  INTEGER NOT NULL,
            bucket       INTEGER NOT NULL,
            n            INTEGER NOT NULL,
            PRIMARY KEY (day, provider_id, bucket)
        ) WITHOUT ROWID;
        -- the oldest unassigned lead of a status, without walking the assigned ones
        CREATE INDEX leads_unassigned ON leads (status, id) WHERE provider_id IS NULL;

        CREATE TRIGGER lead_stats_insert AFTER INSERT ON leads BEGIN
            INSERT INTO lead_counts (provider_id, status, n)
                VALUES (coalesce(NEW.provider_id, 0), NEW.status, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
            INSERT INTO lead_hours (hour, provider_id, created, assigned)
                VALUES (substr(NEW.created_at, 1, 13), coalesce(NEW.provider_id, 0), 1,
                        NEW.provider_id IS NOT NULL)
                ON CONFLICT DO UPDATE SET created = created + 1,
                    assigned = assigned + excluded.assigned;
        END;
        CREATE TRIGGER lead_stats_update AFTER UPDATE OF status, provider_id ON leads
        WHEN OLD.status IS NOT NEW.status OR OLD.provider_id IS NOT NEW.provider_id BEGIN
            UPDATE lead_counts SET n = n - 1
                WHERE provider_id = coalesce(OLD.provider_id, 0) AND status = OLD.status;
            INSERT INTO lead_counts (provider_id, status, n)
                VALUES (coalesce(NEW.provider_id, 0), NEW.status, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
            INSERT INTO lead_hours (hour, provider_id, created, assigned)
                SELECT substr(NEW.updated_at, 1, 13), NEW.provider_id, 0, 1
                WHERE NEW.provider_id IS NOT NULL AND OLD.provider_id IS NOT NEW.provider_id
                ON CONFLICT DO UPDATE SET assigned = assigned + 1;
        END;
        CREATE TRIGGER lead_stats_delete AFTER DELETE ON leads BEGIN
            UPDATE lead_counts SET n = n - 1
                WHERE provider_id = coalesce(OLD.provider_id, 0) AND status = OLD.status;
        END;
        -- a provider's first status change of a lead since its latest lead.assigned
        CREATE TRIGGER contact_time AFTER INSERT ON events
        WHEN NEW.lead_id IS NOT NULL AND NEW.type = 'lead.status.updated'
            AND NEW.provider_id IS NOT NULL
            AND json_extract(NEW.payload, '$.changed_by.role') = 'provider' BEGIN
            INSERT INTO contact_times (day, provider_id, bucket, n)
                SELECT date(NEW.created_at, 'unixepoch'), NEW.provider_id,
                    {bucket_sql("NEW.created_at - a.created_at")}, 1
                FROM (SELECT seq, created_at FROM events WHERE lead_id = NEW.lead_id
                      AND seq < NEW.seq AND type = 'lead.assigned'
                      ORDER BY seq DESC LIMIT 1) AS a
                WHERE NOT EXISTS (SELECT 1 FROM events p WHERE p.lead_id = NEW.lead_id
                    AND p.seq > a.seq AND p.seq < NEW.seq AND p.type = 'lead.status.updated'
                    AND json_extract(p.payload, '$.changed_by.role') = 'provider')
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;

        -- what was there before: the leads as they are, and the assignments still stored
        INSERT INTO lead_counts (provider_id, status, n)
            SELECT coalesce(provider_id, 0), status, count(*) FROM leads GROUP BY 1, 2;
        INSERT INTO lead_hours (hour, provider_id, created, assigned)
            SELECT substr(created_at, 1, 13), coalesce(provider_id, 0), count(*), 0
            FROM leads GROUP BY 1, 2;
        INSERT INTO lead_hours (hour, provider_id, created, assigned)
            SELECT strftime('%Y-%m-%dT%H', created_at, 'unixepoch'), provider_id, 0, count(*)
            FROM events WHERE lead_id IS NOT NULL AND type = 'lead.assigned'
            AND provider_id IS NOT NULL GROUP BY 1, 2
            ON CONFLICT DO UPDATE SET assigned = assigned + excluded.assigned;
        """,
    ),
    (
        11,
        # Migration 8's counter triggers, split: the outbox's own counts (every event) as
        # migration 2 kept them, and the api_* counts in triggers of their own that fire for
        # a Pusher API event alone (WHEN ... lead_id IS NULL).  Migration 8 had one trigger
        # do both with `name = X OR (lead_id IS NULL AND name = Y)`: SQLite cannot look an
        # OR over a WITHOUT ROWID table's key up directly, and built a temporary table for it
        # at every event written or marked, which made the relay's marks (and the intake's
        # inserts) 25 times as dear: the relay drained 3,600 events/s instead of 18,800
        # (docs/dev/performance.md).  The retrying count is touched only when it changes.
        """
        DROP TRIGGER outbox_count_insert;
        DROP TRIGGER outbox_count_insert_retrying;
        DROP TRIGGER outbox_count_update;
        DROP TRIGGER outbox_count_delete;
        DROP TRIGGER outbox_count_delete_retrying;

        CREATE TRIGGER outbox_count_insert AFTER INSERT ON events BEGIN
            UPDATE outbox_counts SET n = n + 1 WHERE name = NEW.state;
        END;
        CREATE TRIGGER outbox_count_insert_retrying AFTER INSERT ON events
        WHEN NEW.state = 'pending' AND NEW.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n + 1 WHERE name = 'retrying';
        END;
        CREATE TRIGGER outbox_count_update AFTER UPDATE OF state, attempts ON events
        WHEN OLD.state != NEW.state OR (OLD.attempts > 0) != (NEW.attempts > 0) BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = OLD.state AND OLD.state != NEW.state;
            UPDATE outbox_counts SET n = n + 1 WHERE name = NEW.state AND OLD.state != NEW.state;
            UPDATE outbox_counts
                SET n = n - (OLD.state = 'pending' AND OLD.attempts > 0)
                          + (NEW.state = 'pending' AND NEW.attempts > 0)
                WHERE name = 'retrying' AND (OLD.state = 'pending' AND OLD.attempts > 0)
                    != (NEW.state = 'pending' AND NEW.attempts > 0);
        END;
        CREATE TRIGGER outbox_count_delete AFTER DELETE ON events BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = OLD.state;
        END;
        CREATE TRIGGER outbox_count_delete_retrying AFTER DELETE ON events
        WHEN OLD.state = 'pending' AND OLD.attempts > 0 BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = 'retrying';
        END;

        CREATE TRIGGER outbox_count_api_insert AFTER INSERT ON events
        WHEN NEW.lead_id IS NULL BEGIN
            UPDATE outbox_counts SET n = n + 1 WHERE name = 'api_' || NEW.state;
            UPDATE outbox_counts SET n = n + 1
                WHERE name = 'api_retrying' AND NEW.state = 'pending' AND NEW.attempts > 0;
        END;
        CREATE TRIGGER outbox_count_api_update AFTER UPDATE OF state, attempts ON events
        WHEN OLD.lead_id IS NULL
            AND (OLD.state != NEW.state OR (OLD.attempts > 0) != (NEW.attempts > 0)) BEGIN
            UPDATE outbox_counts SET n = n - 1
                WHERE name = 'api_' || OLD.state AND OLD.state != NEW.state;
            UPDATE outbox_counts SET n = n + 1
                WHERE name = 'api_' || NEW.state AND OLD.state != NEW.state;
            UPDATE outbox_counts
                SET n = n - (OLD.state = 'pending' AND OLD.attempts > 0)
                          + (NEW.state = 'pending' AND NEW.attempts > 0)
                WHERE name = 'api_retrying' AND (OLD.state = 'pending' AND OLD.attempts > 0)
                    != (NEW.state = 'pending' AND NEW.attempts > 0);
        END;
        CREATE TRIGGER outbox_count_api_delete AFTER DELETE ON events
        WHEN OLD.lead_id IS NULL BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE name = 'api_' || OLD.state;
            UPDATE outbox_counts SET n = n - 1
                WHERE name = 'api_retrying' AND OLD.state = 'pending' AND OLD.attempts > 0;
        END;
        """,
    ),
)
