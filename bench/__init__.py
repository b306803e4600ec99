"""Benchmarks of the connector: ``python -m bench`` (see :mod:`bench.run`); ``bench/http_stack/``
compares HTTP stacks for the source."""
