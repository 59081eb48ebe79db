"""Silver as Apache Iceberg tables (``silver_format = iceberg``): one table per dataset,
partitioned by day of the event time, written by one committer.

Needs the ``iceberg`` extra (pyiceberg). Nothing on the transform's path imports this package:
the transform hands its files over through ``commit.IcebergHandoff`` and a queue.

- ``catalog``: which catalog holds the tables (Glue in AWS, a sqlite ``SqlCatalog`` locally) and
  where a table's files live (``silver/<dataset>/data|metadata/`` in the silver store);
- ``schema``: a table's schema from the silver files, and schema evolution (or its refusal);
- ``committer``: a batch of commit messages into one snapshot per table;
- ``maintenance``: compaction of a day, snapshot expiry, orphan-file removal;
- ``read``: a table (or every table) as Arrow, for ``query`` and ``verify``.
"""
