-- Version 2: cluster metadata keyed by cluster name, filled from the single-row table of version 1.

CREATE TABLE cluster_metadata_info (
  metadata_partition INT NOT NULL,
  cluster_name       VARCHAR(255) NOT NULL,
  data               MEDIUMBLOB NOT NULL,
  data_encoding      VARCHAR(16) NOT NULL,
  version            BIGINT NOT NULL,
  PRIMARY KEY (metadata_partition, cluster_name)
);

INSERT INTO cluster_metadata_info (metadata_partition, cluster_name, data, data_encoding, version)
  SELECT metadata_partition, 'active', data, data_encoding, version FROM cluster_metadata;
