"""SQL over token tables (DuckDB views and macros), corpus statistics, and detokenization back to audio.

- `pipeline.query.table`: `open_token_table`, `run_query` (`speechtok query`); the views/macros are in `views`.
- `pipeline.query.stats`: `table_stats`, `token_table_stats`; `pipeline.query.histogram`: `histogram_png`
  (`speechtok stats`).
- `pipeline.query.detokenize`: `select_rows`, `detokenize`, `RegistryCodecs` (`speechtok detokenize`).

Nothing is re-exported here, so `speechtok query` starts without loading matplotlib, torch or MLflow.
"""
