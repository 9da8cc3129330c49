"""geoforensics eval: benchmark rows, the bench runner, the paper's tables and figures.

- :mod:`.baselines`: the naive row (a random training location);
- :mod:`.results`: :class:`~.results.RowResult` (per-recording predictions of one row and seed)
  and :class:`~.results.ResultStore` (saved per row and seed; resume checks);
- :mod:`.rows`: the registry of benchmark rows and the data they share;
- :mod:`.bench`: :func:`~.bench.run_bench` (``geoforensics bench``) and its presets;
- :mod:`.tables`, :mod:`.plots`: Markdown tables and figures (error CDF, error map);
- :mod:`.aggregation`: spatiotemporal aggregation of recording embeddings (Table 4);
- :mod:`.predictions_csv`: the public scorer's CSV format, reader and scorer.

Submodules import their heavy dependencies (torch, matplotlib, lightning) only when used.
"""
