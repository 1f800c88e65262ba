"""The connector identity: created once by the leader, shared, stable, rotated only on request."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ops import testing

from connector_identity import ConnectorIdentity, generate_identity
from tests.unit.builders import (
    CONNECTOR_DOMAIN,
    SigningCA,
    deploy,
    follower,
    peer_address,
    replace_relation,
    workload_file,
)
from tests.unit.conftest import PebbleCalls


def identity_secret(state: testing.State) -> testing.Secret:
    return next(s for s in state.secrets if s.label == "connector-identity")


def served_certificate(container: testing.Container) -> str:
    return workload_file(container, "tls/connector.crt").read_text()


def test_generated_certificate_names_the_connector_domain_for_ten_years():
    identity = generate_identity(CONNECTOR_DOMAIN)

    cert = x509.load_pem_x509_certificate(identity.certificate.encode())
    assert identity.dns_names == (CONNECTOR_DOMAIN,)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3650
    assert cert.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]


def test_fingerprint_is_the_sha256_of_the_certificate_der():
    identity = generate_identity(CONNECTOR_DOMAIN)
    cert = x509.load_pem_x509_certificate(identity.certificate.encode())

    der = cert.public_bytes(serialization.Encoding.DER)
    assert identity.fingerprint == hashlib.sha256(der).hexdigest()


def test_leader_keeps_the_identity_in_an_app_secret_and_publishes_its_fingerprint(
    ctx, ca: SigningCA
):
    deployment = deploy(ctx, ca)

    secret = identity_secret(deployment.state)
    identity = ConnectorIdentity(
        secret.latest_content["certificate"], secret.latest_content["private-key"]
    )
    peer_data = deployment.relation(deployment.peers).local_app_data
    assert secret.owner == "app"
    assert peer_data["connector-secret-id"] == secret.id
    assert peer_data["connector-fingerprint"] == identity.fingerprint
    assert served_certificate(deployment.container) == identity.certificate


def test_every_unit_serves_the_leaders_certificate(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    secret = identity_secret(leader.state)

    other = follower(ctx, ca, leader)

    assert served_certificate(other.container) == secret.latest_content["certificate"]


def test_scale_out_keeps_the_identity(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    before = identity_secret(deployment.state).latest_content
    peers = dataclasses.replace(
        deployment.relation(deployment.peers), peers_data={1: {"address": peer_address(1)}}
    )

    out = ctx.run(
        ctx.on.relation_joined(peers, remote_unit=1), replace_relation(deployment.state, peers)
    )

    assert identity_secret(out).latest_content == before


def test_new_leader_keeps_the_identity(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    secret = identity_secret(leader.state)
    peer_data = dict(leader.relation(leader.peers).local_app_data)
    other = follower(ctx, ca, leader)

    out = ctx.run(ctx.on.leader_elected(), dataclasses.replace(other.state, leader=True))

    assert identity_secret(out).latest_content == secret.latest_content
    assert out.get_relation(other.peers.id).local_app_data == peer_data


def test_management_certificate_renewal_keeps_the_identity(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    before = served_certificate(deployment.container)
    renewed = ca.sign_all(deployment.state, deployment.certificates)

    out = ctx.run(ctx.on.relation_changed(renewed), replace_relation(deployment.state, renewed))

    assert served_certificate(out.get_container("cluster-manager")) == before


def test_rotation_by_the_leader_is_served_after_a_restart_of_the_apps(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    old = identity_secret(deployment.state).latest_content["certificate"]
    pebble_calls.calls.clear()

    out = ctx.run(
        ctx.on.action("rotate-connector-certificate", params={"confirm": True}), deployment.state
    )

    new = served_certificate(out.get_container("cluster-manager"))
    assert new != old
    assert identity_secret(out).latest_content["certificate"] == new
    assert pebble_calls.calls == [
        ("SIGUSR2", ("haproxy",)),
        ("restart", ("management", "connector", "forwarder", "tunnel")),
    ]


def test_non_leader_picks_up_a_rotated_identity(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    secret = identity_secret(leader.state)
    peer_data = dict(leader.relation(leader.peers).local_app_data)
    other = follower(ctx, ca, leader)
    rotated = generate_identity(CONNECTOR_DOMAIN)
    content = {"certificate": rotated.certificate, "private-key": rotated.private_key}
    new_secret = dataclasses.replace(secret, tracked_content=content, latest_content=content)
    peers = dataclasses.replace(
        other.relation(other.peers),
        local_app_data={**peer_data, "connector-fingerprint": rotated.fingerprint},
        peers_data={1: {"address": peer_address(1)}},
    )
    state = dataclasses.replace(
        replace_relation(other.state, peers),
        secrets={*(s for s in other.state.secrets if s.id != secret.id), new_secret},
    )

    out = ctx.run(ctx.on.relation_changed(peers, remote_unit=1), state)

    assert served_certificate(out.get_container("cluster-manager")) == rotated.certificate


@pytest.mark.parametrize("leader", [True, False])
def test_connector_domain_change_does_not_replace_the_certificate(ctx, ca: SigningCA, leader):
    deployment = deploy(ctx, ca)
    before = identity_secret(deployment.state).latest_content
    state = dataclasses.replace(
        deployment.state,
        leader=leader,
        config={**deployment.state.config, "cluster-connector-domain": "other.example.com"},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert identity_secret(out).latest_content == before
    assert served_certificate(out.get_container("cluster-manager")) == before["certificate"]
