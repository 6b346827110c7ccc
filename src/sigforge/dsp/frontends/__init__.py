"""Frontends turn user input into IR. Each one refuses what it cannot translate with a located error."""
