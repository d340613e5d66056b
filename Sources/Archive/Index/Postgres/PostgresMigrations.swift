/// The PostgreSQL schema as numbered migrations, applied in order at start and recorded in `facet_migrations`
/// (under an advisory lock, so replicas starting together apply each once). A migration is never edited once
/// released; a change is a new one. Every table carries `tenant` first: each clinic's rows stay apart, and it is
/// the distribution column should the index be sharded by tenant (e.g. Citus).
enum PostgresMigrations {
    struct Migration {
        var version: Int
        var name: String
        var statements: [String]
    }

    static let all: [Migration] = [
        Migration(
            version: 1,
            name: "archive v1: studies, series, instances, originals, deletions, pending blobs, audit anchor",
            statements: [
                """
                CREATE TABLE studies (
                    tenant TEXT NOT NULL, study_uid TEXT NOT NULL, attributes BYTEA NOT NULL,
                    patient_id_index TEXT, accession_index TEXT, PRIMARY KEY (tenant, study_uid))
                """,
                "CREATE INDEX studies_patient ON studies (tenant, patient_id_index)",
                "CREATE INDEX studies_accession ON studies (tenant, accession_index)",
                """
                CREATE TABLE series (
                    tenant TEXT NOT NULL, series_uid TEXT NOT NULL, study_uid TEXT NOT NULL, modality TEXT,
                    attributes BYTEA NOT NULL, PRIMARY KEY (tenant, series_uid))
                """,
                """
                CREATE TABLE instances (
                    tenant TEXT NOT NULL, sop_uid TEXT NOT NULL, sop_class TEXT NOT NULL, series_uid TEXT NOT NULL,
                    study_uid TEXT NOT NULL, transfer_syntax TEXT NOT NULL, blob_id TEXT NOT NULL,
                    size BIGINT NOT NULL, sha256 TEXT NOT NULL, stored DOUBLE PRECISION NOT NULL,
                    seq BIGSERIAL NOT NULL, attributes BYTEA NOT NULL, metadata BYTEA NOT NULL,
                    PRIMARY KEY (tenant, sop_uid))
                """,
                "CREATE INDEX instances_study ON instances (tenant, study_uid)",
                "CREATE INDEX instances_series ON instances (tenant, series_uid)",
                """
                CREATE TABLE originals (
                    tenant TEXT NOT NULL, sop_uid TEXT NOT NULL, seq INTEGER NOT NULL, blob_id TEXT NOT NULL,
                    size BIGINT NOT NULL, sha256 TEXT NOT NULL, details BYTEA NOT NULL,
                    PRIMARY KEY (tenant, sop_uid, seq))
                """,
                """
                CREATE TABLE superseded (
                    tenant TEXT NOT NULL, blob_id TEXT NOT NULL, sop_uid TEXT NOT NULL, sha256 TEXT NOT NULL,
                    replaced DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, blob_id))
                """,
                """
                CREATE TABLE deleted_instances (
                    seq BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sop_uid TEXT NOT NULL, series_uid TEXT NOT NULL,
                    study_uid TEXT NOT NULL, blob_id TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL,
                    deleted DOUBLE PRECISION NOT NULL, details BYTEA NOT NULL, attributes BYTEA NOT NULL,
                    metadata BYTEA NOT NULL)
                """,
                "CREATE INDEX deleted_instances_tenant ON deleted_instances (tenant, seq)",
                """
                CREATE TABLE deleted_originals (
                    tenant TEXT NOT NULL, sop_uid TEXT NOT NULL, seq INTEGER NOT NULL, blob_id TEXT NOT NULL,
                    size BIGINT NOT NULL, sha256 TEXT NOT NULL, details BYTEA NOT NULL,
                    deleted DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE pending_blobs (
                    tenant TEXT NOT NULL, blob_id TEXT NOT NULL, owner TEXT NOT NULL,
                    created DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, blob_id))
                """,
                """
                CREATE TABLE audit_anchor (
                    tenant TEXT PRIMARY KEY, sequence BIGINT NOT NULL, mac TEXT NOT NULL, seal TEXT NOT NULL)
                """,
            ]),
        Migration(
            version: 2, name: "change feed: every stored or deleted instance, for the other processes' catalogues",
            statements: [
                """
                CREATE TABLE changes (
                    seq BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sop_uid TEXT NOT NULL,
                    changed DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX changes_tenant ON changes (tenant, seq)",
            ]),
        Migration(
            version: 3, name: "tenant keys: each clinic's key, wrapped by the master key, shared by every process",
            statements: ["CREATE TABLE tenant_keys (tenant TEXT PRIMARY KEY, wrapped BYTEA NOT NULL)"]),
        Migration(
            version: 4, name: "job queue: background work taken by exactly one process",
            statements: [
                """
                CREATE TABLE jobs (
                    tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, payload BYTEA NOT NULL,
                    status TEXT NOT NULL, attempts INTEGER NOT NULL, progress DOUBLE PRECISION NOT NULL,
                    result BYTEA, failure TEXT, worker TEXT, lease_until DOUBLE PRECISION,
                    created DOUBLE PRECISION NOT NULL, PRIMARY KEY (tenant, id))
                """,
                "CREATE INDEX jobs_waiting ON jobs (tenant, kind, status, created)",
            ]),
        Migration(
            version: 5,
            name:
                "identity: accounts, care teams, break-the-glass grants, sessions, revocations, the token signing key",
            statements: [
                """
                CREATE TABLE accounts (
                    tenant TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL, status TEXT NOT NULL,
                    password_hash TEXT NOT NULL, totp_secret BYTEA, last_totp_step BIGINT,
                    failed_logins TEXT NOT NULL DEFAULT '', locked_until DOUBLE PRECISION, client_id TEXT UNIQUE,
                    totp_exempt BOOLEAN NOT NULL DEFAULT FALSE, created DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (tenant, username))
                """,
                """
                CREATE TABLE care_team_members (
                    tenant TEXT NOT NULL, patient_key TEXT NOT NULL, username TEXT NOT NULL,
                    PRIMARY KEY (tenant, patient_key, username),
                    FOREIGN KEY (tenant, username) REFERENCES accounts (tenant, username))
                """,
                "CREATE INDEX care_team_by_member ON care_team_members (tenant, username)",
                """
                CREATE TABLE break_glass_grants (
                    tenant TEXT NOT NULL, id TEXT NOT NULL, username TEXT NOT NULL, patient_key TEXT NOT NULL,
                    reason BYTEA NOT NULL, start_time DOUBLE PRECISION NOT NULL, end_time DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (tenant, id))
                """,
                "CREATE INDEX break_glass_by_member ON break_glass_grants (tenant, username, patient_key)",
                """
                CREATE TABLE sessions (
                    jti TEXT PRIMARY KEY, tenant TEXT NOT NULL, username TEXT NOT NULL,
                    issued DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL,
                    last_use DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX sessions_by_account ON sessions (tenant, username)",
                "CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, expires DOUBLE PRECISION NOT NULL)",
                "CREATE TABLE identity_keys (name TEXT PRIMARY KEY, wrapped BYTEA NOT NULL)",
            ]),
        Migration(
            version: 6, name: "audit chain: one chain per clinic shared by every process, and its sealed head",
            statements: [
                "CREATE TABLE audit_entries (tenant TEXT NOT NULL, seq BIGINT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (tenant, seq))",
                """
                CREATE TABLE audit_heads (
                    tenant TEXT PRIMARY KEY, seq BIGINT NOT NULL, mac TEXT NOT NULL, seal TEXT NOT NULL)
                """,
            ]),
        Migration(
            version: 7, name: "jobs: the subject a job is about (a patient's key), to list a patient's jobs",
            statements: [
                "ALTER TABLE jobs ADD COLUMN subject TEXT",
                "CREATE INDEX jobs_by_subject ON jobs (tenant, kind, subject, created)",
            ]),
        Migration(
            version: 8, name: "clinic records: versioned, sealed records beside the images",
            statements: [
                """
                CREATE TABLE clinic_records (
                    tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, version BIGINT NOT NULL,
                    patient_key TEXT NOT NULL, parent TEXT, body BYTEA NOT NULL, actor TEXT NOT NULL,
                    created DOUBLE PRECISION NOT NULL, deleted BOOLEAN NOT NULL, current BOOLEAN NOT NULL,
                    PRIMARY KEY (tenant, kind, id, version))
                """,
                "CREATE INDEX clinic_records_by_patient ON clinic_records (tenant, kind, patient_key) WHERE current",
                "CREATE INDEX clinic_records_by_parent ON clinic_records (tenant, kind, parent) WHERE current",
            ]),
    ]
}
