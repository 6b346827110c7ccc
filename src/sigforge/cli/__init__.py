"""The ``sigforge`` command line."""
