"""Storage: tables, the session/transaction scope, migrations, and the repositories (the only place that queries)."""
