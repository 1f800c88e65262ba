"""Real components for the tests: PostgreSQL, nginx and the gunicorn apps, on loopback."""
