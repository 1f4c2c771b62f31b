"""Benchmarks: a protocol-v1 load generator, a bare-Channels baseline server and the `bench.run` command."""
