"""The running workload for tests; the class lives in tools so the local run mode shares it."""

from tools.stack import CONNECTOR_DOMAIN, MANAGEMENT_DOMAIN, Stack

__all__ = ["CONNECTOR_DOMAIN", "MANAGEMENT_DOMAIN", "Stack"]
