using Aegis.Archive.Data;

namespace Aegis.Archive.Index;

/// <summary>
/// Tables of the "index" component. One row per patient, study, series and instance (PS3.4 C.3 hierarchy), the
/// attributes C-FIND and QIDO-RS match on as columns (PS3.4 C.6.1.1, C.6.2.1; PS3.18 10.6), names also in a
/// normalized form for case-insensitive PN matching, and each level's attributes serialized (attrs) so every
/// return key can be answered. Extra configured attributes go to the index_extra key/value table.
/// </summary>
internal static class IndexSchema
{
    public const string Component = "index";

    private const string SqliteV1 = """
        CREATE TABLE patients (
            id INTEGER PRIMARY KEY,
            patient_key TEXT NOT NULL UNIQUE,
            patient_id TEXT NOT NULL,
            issuer TEXT NOT NULL,
            patient_name TEXT,
            patient_name_norm TEXT,
            birth_date TEXT,
            sex TEXT,
            attrs BLOB NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_patients_id ON patients(patient_id);
        CREATE INDEX ix_patients_name ON patients(patient_name_norm);
        CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            patient_fk INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
            study_uid TEXT NOT NULL UNIQUE,
            study_date TEXT,
            study_time TEXT,
            accession TEXT,
            study_id TEXT,
            referring_name TEXT,
            referring_name_norm TEXT,
            description TEXT,
            attrs BLOB NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_studies_patient ON studies(patient_fk);
        CREATE INDEX ix_studies_date ON studies(study_date);
        CREATE INDEX ix_studies_accession ON studies(accession);
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            study_fk INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            series_uid TEXT NOT NULL UNIQUE,
            modality TEXT,
            series_number INTEGER,
            description TEXT,
            body_part TEXT,
            series_date TEXT,
            series_time TEXT,
            attrs BLOB NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_series_study ON series(study_fk);
        CREATE INDEX ix_series_modality ON series(modality);
        CREATE TABLE instances (
            id INTEGER PRIMARY KEY,
            series_fk INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            sop_uid TEXT NOT NULL UNIQUE,
            sop_class_uid TEXT NOT NULL,
            instance_number INTEGER,
            transfer_syntax TEXT NOT NULL,
            blob_id TEXT NOT NULL UNIQUE,
            length INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            source_ae TEXT,
            attrs BLOB NOT NULL);
        CREATE INDEX ix_instances_series ON instances(series_fk);
        CREATE TABLE index_extra (
            level INTEGER NOT NULL,
            owner_id INTEGER NOT NULL,
            tag INTEGER NOT NULL,
            value TEXT NOT NULL);
        CREATE INDEX ix_extra_owner ON index_extra(level, owner_id);
        CREATE INDEX ix_extra_value ON index_extra(tag, value);
        CREATE TABLE index_extra_tags (tag INTEGER PRIMARY KEY, level INTEGER NOT NULL);
        """;

    private const string PostgresV1 = """
        CREATE TABLE patients (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            patient_key TEXT NOT NULL UNIQUE,
            patient_id TEXT NOT NULL,
            issuer TEXT NOT NULL,
            patient_name TEXT,
            patient_name_norm TEXT,
            birth_date TEXT,
            sex TEXT,
            attrs BYTEA NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_patients_id ON patients(patient_id);
        CREATE INDEX ix_patients_name ON patients(patient_name_norm text_pattern_ops);
        CREATE TABLE studies (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            patient_fk BIGINT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
            study_uid TEXT NOT NULL UNIQUE,
            study_date TEXT,
            study_time TEXT,
            accession TEXT,
            study_id TEXT,
            referring_name TEXT,
            referring_name_norm TEXT,
            description TEXT,
            attrs BYTEA NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_studies_patient ON studies(patient_fk);
        CREATE INDEX ix_studies_date ON studies(study_date);
        CREATE INDEX ix_studies_accession ON studies(accession);
        CREATE TABLE series (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            study_fk BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
            series_uid TEXT NOT NULL UNIQUE,
            modality TEXT,
            series_number INTEGER,
            description TEXT,
            body_part TEXT,
            series_date TEXT,
            series_time TEXT,
            attrs BYTEA NOT NULL,
            updated_at TEXT NOT NULL);
        CREATE INDEX ix_series_study ON series(study_fk);
        CREATE INDEX ix_series_modality ON series(modality);
        CREATE TABLE instances (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            series_fk BIGINT NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            sop_uid TEXT NOT NULL UNIQUE,
            sop_class_uid TEXT NOT NULL,
            instance_number INTEGER,
            transfer_syntax TEXT NOT NULL,
            blob_id TEXT NOT NULL UNIQUE,
            length BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            source_ae TEXT,
            attrs BYTEA NOT NULL);
        CREATE INDEX ix_instances_series ON instances(series_fk);
        CREATE TABLE index_extra (
            level INTEGER NOT NULL,
            owner_id BIGINT NOT NULL,
            tag BIGINT NOT NULL,
            value TEXT NOT NULL);
        CREATE INDEX ix_extra_owner ON index_extra(level, owner_id);
        CREATE INDEX ix_extra_value ON index_extra(tag, value);
        CREATE TABLE index_extra_tags (tag BIGINT PRIMARY KEY, level INTEGER NOT NULL);
        """;

    public static readonly IReadOnlyList<Migration> Migrations =
    [
        new(1, "patients, studies, series, instances with matching columns and serialized level attributes; extra indexed tags", SqliteV1, PostgresV1),
    ];
}
