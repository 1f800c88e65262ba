"""MicroCloud Cluster Manager workload: cluster connector, management API and UI.

This top-level module stays empty on purpose: the charm imports `cluster_manager.front` and
`cluster_manager.options` and `cluster_manager.exit_codes` (standard library only) without pulling
in Flask or psycopg.
"""
