"""Real components for the tests: PostgreSQL, the HAProxy front and the gunicorn apps."""
