"""The SQL surface of a token table: the views and macros every `speechtok query` connection starts with.

Each object carries its own one-line description, so `--help` and the docs list exactly what is installed.
Token lists are frame-major (`[n_frames × tokens_per_frame]` flattened, see pipeline/tokenize/table.py);
frame and group indices in the macros are 0-based, DuckDB list indices are 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class SqlObject:
    """A view or macro: how to call it, what it gives, and the statement that creates it."""

    signature: str
    description: str
    create: str


VIEWS = (
    SqlObject(
        "tokens",
        "every row of every token file, with the hive partitions model_version (INTEGER) and split as columns",
        "CREATE VIEW tokens AS SELECT * FROM {scan}",
    ),
    SqlObject(
        "utterances",
        "tokens without the heavy `tokens` list, plus n_tokens and tokens_per_second (fast: the list is not read)",
        "CREATE VIEW utterances AS SELECT * EXCLUDE (tokens), "
        "n_frames * tokens_per_frame AS n_tokens, "
        "n_frames * tokens_per_frame / nullif(duration_s, 0) AS tokens_per_second "
        "FROM tokens",
    ),
)

MACROS = (
    SqlObject(
        "token_count(tokens)",
        "number of tokens in a row's list",
        "CREATE MACRO token_count(tokens) AS len(tokens)",
    ),
    SqlObject(
        "frames(tokens, tokens_per_frame)",
        "the list cut into frames: a list of n_frames lists of tokens_per_frame tokens",
        "CREATE MACRO frames(tokens, tpf) AS "
        "[list_slice(tokens, i * tpf + 1, (i + 1) * tpf) FOR i IN range(len(tokens) // tpf)]",
    ),
    SqlObject(
        "frame(tokens, tokens_per_frame, i)",
        "the tokens of frame i (0-based)",
        "CREATE MACRO frame(tokens, tpf, i) AS list_slice(tokens, i * tpf + 1, (i + 1) * tpf)",
    ),
    SqlObject(
        "group_tokens(tokens, tokens_per_frame, g)",
        "token g (0-based) of every frame: one FSQ group's sequence",
        "CREATE MACRO group_tokens(tokens, tpf, g) AS [tokens[i * tpf + g + 1] FOR i IN range(len(tokens) // tpf)]",
    ),
    SqlObject(
        "token_frequencies()",
        "table macro: (token, count) over all rows of `tokens`",
        "CREATE MACRO token_frequencies() AS TABLE "
        "SELECT token, count(*) AS count FROM (SELECT unnest(tokens) AS token FROM tokens) GROUP BY token",
    ),
)

EXAMPLE_SQL = "SELECT speaker, count(*) AS utterances, sum(n_tokens) AS tokens FROM utterances GROUP BY speaker"


def install(connection: duckdb.DuckDBPyConnection, scan: str) -> None:
    """Create the views (over the `read_parquet(...)` expression `scan`) and the macros on `connection`."""
    for view in VIEWS:
        connection.execute(view.create.format(scan=scan))
    for macro in MACROS:
        connection.execute(macro.create)


def describe() -> str:
    """Views, macros and an example, as plain text for `--help`."""
    lines = ["Views:"]
    lines += [f"  {view.signature}: {view.description}" for view in VIEWS]
    lines.append("Macros:")
    lines += [f"  {macro.signature}: {macro.description}" for macro in MACROS]
    lines.append(f'Example: speechtok query "{EXAMPLE_SQL}" --tokens OUT')
    lines.append('Columns: speechtok query "DESCRIBE tokens" --tokens OUT')
    return "\n".join(lines)
