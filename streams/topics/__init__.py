"""What goes onto Kafka: transitions as CloudEvents, dead letters with their origin, batched publish."""
