"""The segmentation core as it runs: compiled by mypyc when built and current (`build`), else pure Python
(`choice` decides at interpreter start). docs/benchmarks.md, "Compiled core"."""
