"""The management side: JSON API, its authentication, and the logic the CLI shares with it."""
