"""One module per capability, plus models, jobs and health."""
