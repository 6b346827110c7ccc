"""Backends: IR graph in, target files out. A backend reads only the IR (never the user's source)."""
