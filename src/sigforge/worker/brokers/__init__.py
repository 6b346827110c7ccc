"""Dramatiq brokers that sigforge ships (the embedded SQLite one; Redis and RabbitMQ come from Dramatiq)."""
