"""Use cases. Services orchestrate the domain and the repositories; they never commit (the scope does)."""
