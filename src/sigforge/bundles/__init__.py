"""The one signed-bundle format (toolchains, updates, install media): pure verification (a later issue)."""
