"""The MicroCloud-facing connector: join, heartbeat and leave over (mutual) TLS."""
