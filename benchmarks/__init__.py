"""reclaim's benchmarks: ``python -m benchmarks [NAME...]`` runs them and prints ratios."""
