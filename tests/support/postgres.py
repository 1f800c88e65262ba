"""PostgreSQL for tests; the class lives in tools so the benchmark shares it."""

from tools.postgres import PostgresServer

__all__ = ["PostgresServer"]
