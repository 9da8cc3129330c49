"""geoforensics eval: benchmark rows, the bench runner, the paper's tables and figures.

- :mod:`.baselines`: the naive row (a random training location);
- :mod:`.results`: :class:`~.results.RowResult` (per-recording predictions of one row and seed)
  and :class:`~.results.ResultStore` (saved per row and seed; resume checks);
- :mod:`.rows`: the benchmark rows (one module per table or kind of row), their registry and
  the data they share;
- :mod:`.presets`: the bench presets (training budgets);
- :mod:`.species_ranking`: species lists -> one gallery point (species and fused rows);
- :mod:`.bench`: :func:`~.bench.run_bench` (``geoforensics bench``);
- :mod:`.coverage`: coverage of the calibrated confidence regions in the bench;
- :mod:`.tables`, :mod:`.plots`: Markdown tables and figures (error CDF, error map);
- :mod:`.aggregation`: spatiotemporal aggregation of recording embeddings (Table 4);
- :mod:`.predictions_csv`: the public scorer's CSV format, reader and scorer.

:mod:`.rows` (and so :mod:`.bench`) imports the models and training it runs (torch,
lightning) when imported; the other submodules import heavy dependencies only when used.
"""
