-- Version 4: columns added to the execution tables, and the Nexus endpoint tables.

ALTER TABLE current_executions
  ADD COLUMN start_time DATETIME(6),
  ADD COLUMN data MEDIUMBLOB NULL,
  ADD COLUMN data_encoding VARCHAR(16) NOT NULL DEFAULT '';

ALTER TABLE executions ADD COLUMN db_record_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE nexus_endpoints (
  id            BINARY(16) NOT NULL,
  data          MEDIUMBLOB NOT NULL,
  data_encoding VARCHAR(16) NOT NULL,
  version       BIGINT NOT NULL,
  PRIMARY KEY (id)
);

-- One row only: the version of the endpoints table as a whole.
CREATE TABLE nexus_endpoints_partition_status (
  id      INT NOT NULL DEFAULT 0 CHECK (id = 0),
  version BIGINT NOT NULL,
  PRIMARY KEY (id)
);
