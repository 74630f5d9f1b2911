"""Operator commands on stored state: namespaces (list, promote, drop), definitions diff/apply, calibrate."""
