"""The streaming updater: poll loop, batch pipeline, ownership and fencing, retries, promote following."""
