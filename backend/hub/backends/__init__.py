"""Hub backends: in-process memory (embedded default) and Redis (many server processes)."""
