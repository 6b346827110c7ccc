"""The worker pool: broker factory, thin actors, and after-commit dispatch of jobs."""
