"""Chaos suite (issue 11): fault scenarios against a `segstream replay` reference of the same log.

Each scenario generates a log, feeds it to a fresh topic at a throttled rate while faults are injected
(worker SIGTERM / kill -9 / SIGSTOP, broker kill -9, Redis kill -9, hostile records), lets the worker
processes finish, rebuilds the same file with `segstream replay` into another namespace, and compares key by
key, transition id by transition id and dead letter by dead letter. Everything runs on a private local stack
(own ports and folder) that the suite starts and stops, so killing its broker or Redis disturbs nobody.

`python -m tests.chaos --help`; docs/reliability.md.
"""
