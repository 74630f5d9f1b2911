"""Rebuilding a namespace from a log (JSONL, CSV orders, a Kafka topic) through the worker's own batch path."""
