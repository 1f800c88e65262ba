"""Request and response models of the wire contract (no Flask imports)."""
