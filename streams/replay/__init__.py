"""Rebuilding a namespace from a log (JSONL, CSV orders, Kafka) through the worker's own batch path."""
