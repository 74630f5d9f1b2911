"""What goes onto Kafka topics: transitions as CloudEvents, dead letters with their origin, batch publish."""
