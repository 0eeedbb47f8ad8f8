-- The model registry: registered models, their versions, tags and aliases. Children refer to a
-- model by name without a foreign key: a rename rewrites the name in every table inside one
-- transaction, which a foreign key without ON UPDATE CASCADE (not portable to every dialect's
-- defaults here) would refuse.
CREATE TABLE registered_models (
    name VARCHAR(256) PRIMARY KEY,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT NOT NULL,
    -- The highest version ever issued: deleted versions' numbers are never reused.
    last_version BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE registered_model_tags (
    name VARCHAR(256) NOT NULL,
    tag_key VARCHAR(250) NOT NULL,
    tag_value MEDIUMTEXT NOT NULL,
    PRIMARY KEY (name, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE model_versions (
    name VARCHAR(256) NOT NULL,
    version BIGINT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    description TEXT NOT NULL,
    user_id TEXT NOT NULL,
    current_stage VARCHAR(20) NOT NULL,
    source TEXT NOT NULL,
    run_id VARCHAR(32) NOT NULL,
    run_link TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    status_message TEXT NOT NULL,
    model_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (name, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    name VARCHAR(256) NOT NULL,
    version BIGINT NOT NULL,
    tag_key VARCHAR(250) NOT NULL,
    tag_value MEDIUMTEXT NOT NULL,
    PRIMARY KEY (name, version, tag_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE registered_model_aliases (
    name VARCHAR(256) NOT NULL,
    alias VARCHAR(256) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
