"""The Redis side every capability shares: the store port, its Redis adapter and commit script, key layout."""
