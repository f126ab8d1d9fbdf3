-- Version 3: per task queue user data (worker versioning), and the build id index.

CREATE TABLE task_queue_user_data (
  namespace_id    BINARY(16) NOT NULL,
  task_queue_name VARCHAR(255) NOT NULL,
  data            MEDIUMBLOB NOT NULL,   -- a serialised TaskQueueUserData message
  data_encoding   VARCHAR(16) NOT NULL,
  version         BIGINT NOT NULL,       -- optimistic concurrency: the version of this row
  PRIMARY KEY (namespace_id, task_queue_name)
);

CREATE TABLE build_id_to_task_queue (
  namespace_id    BINARY(16) NOT NULL,
  build_id        VARCHAR(255) NOT NULL,
  task_queue_name VARCHAR(255) NOT NULL,
  PRIMARY KEY (namespace_id, build_id, task_queue_name)
);
