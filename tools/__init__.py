"""MicroCloud client emulator, fleet simulator and heartbeat load generator.

Modules:
    pki: certificates for tests, the fleet and the benchmark.
    microcloud: join token codec and one emulated MicroCloud cluster (the real client's TLS dance).
    payloads: realistic heartbeat payloads, including LXD ``/1.0/metrics`` text.
    fleet: N emulated clusters joining once and heartbeating on a schedule (with a CLI).
    loadgen: a keep-alive mTLS heartbeat load generator for the benchmarks (with a CLI).
    bench_forward: the forwarder's parse and encode rate against promtool's.
    bench_fleet_metrics: a fleet's LXD metrics through one unit into a real Prometheus.
    procstat: CPU time and memory (PSS) of processes, from /proc.
"""
