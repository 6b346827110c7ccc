"""Thin controllers: parse, call one service, shape the response."""
