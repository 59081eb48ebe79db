"""``elt-sdk query``: SQL (DuckDB) over the silver datasets of a stack or a local folder."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk.cli.context import UsageProblem, emit_table, state
from elt_sdk.cli.silver import local_iceberg, local_root, silver_option
from elt_sdk.cli.targeting import TargetSpec, target_options


@click.command("query")
@click.argument("sql", required=False)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of row objects keyed by column name.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@silver_option
@target_options
def command(sql: str | None, as_json: bool, as_csv: bool, silver_dir: Path | None, target: TargetSpec) -> None:
    """Run SQL on silver: one view per dataset (shipments, ...; also as <db>.shipments, the Glue
    database's name, so Athena queries run as written), dt a DATE, approx_distinct() as Athena
    has it. Without SQL: rows per dataset and day, and the latest rows.

    Reads the targeted stack's silver bucket (the local stack by default) through pyarrow's S3
    filesystem, or a local output folder with --silver DIR. Iceberg silver (silver_format =
    iceberg, or a folder with iceberg.db) is read through its catalog: each table's current
    snapshot. Exit codes: 0 done, 2 bad SQL or arguments.
    """
    import duckdb

    from elt_sdk import query

    if as_json and as_csv:
        raise UsageProblem("--json and --csv: choose one")
    reg = state().registry
    datasets = dict(reg.datasets)
    if silver_dir is not None:
        if target.given:
            raise UsageProblem("--silver reads a local folder: it does not go with a stack option")
        root = local_root(silver_dir)
        db = query.database_name(state().settings.name_prefix)
        con = query.connect(datasets, folder=root, databases=[db], iceberg=local_iceberg(root, db))
        where = str(silver_dir)
    else:
        t = target.resolve()
        dbs = {query.database_name(t.settings.name_prefix), t.outputs.get("glue_database") or ""} - {""}
        con = query.connect(datasets, filesystem=t.s3_filesystem(), bucket=t.silver_bucket, databases=sorted(dbs),
                            iceberg=t.warehouse() if t.iceberg else None)
        where = f"s3://{t.silver_bucket} ({t.description})"
    if not sql:
        parts = query.summary(con, datasets)
        if not parts:
            click.echo(f"no silver rows in {where}")
        for name, cols, rows, scols, srows in parts:
            click.echo(f"\n== {name}: {sum(r[1] for r in rows):,} rows")
            emit_table(cols, rows)
            click.echo("")
            emit_table(scols, [[query.plain(v) for v in r] for r in srows])
        return
    try:
        columns, rows = query.run(con, sql)
    except duckdb.Error as exc:
        raise UsageProblem(f"query failed: {exc}") from None
    if as_json:
        state().emitted_json = True
        click.echo(query.as_json(columns, rows))
    elif as_csv:
        click.echo(query.as_csv(columns, rows), nl=False)
    else:
        emit_table(columns, [[query.plain(v) for v in r] for r in rows])
