-- The model registry: registered models, their versions, tags and aliases. Children refer to a
-- model by name without a foreign key: a rename rewrites the name in every table inside one
-- transaction, which a foreign key without ON UPDATE CASCADE (not portable to every dialect's
-- defaults here) would refuse.
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT NOT NULL,
    -- The highest version ever issued: deleted versions' numbers are never reused.
    last_version BIGINT NOT NULL
);
CREATE TABLE registered_model_tags (
    name TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (name, tag_key)
);
CREATE TABLE model_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT NOT NULL,
    user_id TEXT NOT NULL,
    current_stage TEXT NOT NULL,
    source TEXT NOT NULL,
    run_id TEXT NOT NULL,
    run_link TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    model_id TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (name, version, tag_key)
);
CREATE TABLE registered_model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias)
);
