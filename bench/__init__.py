"""PosFleet benchmarks: see bench/README.md."""
