"""Operator commands of the CLI (join tokens, clusters, API tokens, fingerprint)."""
