"""The dashboard served by `segstream api` at `/`, and the aggregate answers it draws (docs/dashboard.md)."""
