"""FastAPI side of speechfleet: it validates requests, turns them into jobs on per-model
queues and answers with results; it never runs a model."""
