"""Forwarding the clusters' LXD metrics to Prometheus remote-write endpoints (design.md §4).

The connector workers hand each heartbeat's raw metrics texts over a unix socket (`client`,
`wire`) to a process of its own (`service`, the Pebble service `forwarder`), which parses and
encodes them (`exposition`), cuts them into requests and pushes them (`forwarder`, `sender`):
that work never competes with heartbeats for an interpreter.
"""
