"""PostgreSQL access: the connection pool, migrations and one query module per table."""
