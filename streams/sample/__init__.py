"""The deterministic synthetic event generator: personas, schedule, purchases, engagement."""
