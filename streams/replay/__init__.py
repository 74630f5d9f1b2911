"""Rebuilding a namespace from a log (JSONL, CSV orders, Kafka topic) through the worker's own batch path."""
