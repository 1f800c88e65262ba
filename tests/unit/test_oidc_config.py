"""Web UI login settings: the oidc-* options with a Juju user secret, or the oauth relation."""

from __future__ import annotations

import dataclasses
import json

from cluster_manager.options import Options
from ops import testing

from oidc import NOT_CONFIGURED
from tests.unit.builders import (
    CONFIG,
    MANAGEMENT_DOMAIN,
    SigningCA,
    deploy,
    replace_relation,
    workload_file,
)
from workload import parse_env_file

ISSUER = "https://idp.example.com/realms/ops"
ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
CA_BUNDLE = "/etc/cluster-manager/tls/ca-bundle.crt"


def env_of(state: testing.State) -> dict[str, str]:
    container = state.get_container("cluster-manager")
    return parse_env_file(workload_file(container, ENV_FILE).read_text())


def with_config(state: testing.State, **options: str) -> testing.State:
    return dataclasses.replace(state, config={**CONFIG, **options})


def user_secret(content: dict[str, str] | None = None) -> testing.Secret:
    return testing.Secret(content or {"client-secret": "s3cr3t-value"})


def oauth_relation(
    provider_data: dict[str, str] | None = None, local: dict[str, str] | None = None
) -> testing.Relation:
    return testing.Relation(
        "oauth",
        remote_app_name="hydra",
        remote_app_data=provider_data or {},
        local_app_data=local or {},
    )


def provider_data(secret: testing.Secret, ca_chain: list[str] | None = None) -> dict[str, str]:
    data = {
        "issuer_url": "https://iam.example.com",
        "authorization_endpoint": "https://iam.example.com/oauth2/auth",
        "token_endpoint": "https://iam.example.com/oauth2/token",
        "introspection_endpoint": "https://iam.example.com/admin/oauth2/introspect",
        "userinfo_endpoint": "https://iam.example.com/userinfo",
        "jwks_endpoint": "https://iam.example.com/.well-known/jwks.json",
        "scope": "openid email profile offline_access",
        "client_id": "hydra-client-id",
        "client_secret_id": secret.id,
    }
    if ca_chain is not None:
        data["ca_chain"] = json.dumps(ca_chain)
    return data


def test_config_options_and_user_secret_reach_the_env_file(ctx, ca: SigningCA):
    secret = user_secret()
    deployment = deploy(ctx, ca, secrets=(secret,))
    state = with_config(
        deployment.state,
        **{
            "oidc-issuer": ISSUER,
            "oidc-client-id": "cluster-manager",
            "oidc-client-secret": secret.id,
            "oidc-audience": "mcm-api",
            "oidc-admin-group": "ops",
        },
    )

    out = ctx.run(ctx.on.config_changed(), state)

    env = env_of(out)
    assert env["MCM_OIDC_ISSUER"] == ISSUER
    assert env["MCM_OIDC_CLIENT_ID"] == "cluster-manager"
    assert env["MCM_OIDC_CLIENT_SECRET"] == "s3cr3t-value"
    assert env["MCM_OIDC_AUDIENCE"] == "mcm-api"
    assert env["MCM_OIDC_GROUPS_CLAIM"] == "mcm-idp-groups"
    assert env["MCM_OIDC_ADMIN_GROUP"] == "ops"
    assert env["MCM_PUBLIC_URL"] == f"https://{MANAGEMENT_DOMAIN}"
    assert out.unit_status == testing.ActiveStatus()


def test_configured_login_makes_the_unit_plainly_active(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = with_config(deployment.state, **{"oidc-issuer": ISSUER, "oidc-client-id": "c"})

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.ActiveStatus()
    assert env_of(out)["MCM_OIDC_CLIENT_SECRET"] == ""


def test_without_any_login_the_status_says_so(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    out = ctx.run(ctx.on.update_status(), deployment.state)

    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)
    assert "MCM_OIDC_ISSUER" not in env_of(out)


def test_ungranted_secret_blocks_with_the_grant_command(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    missing = "secret:d0ke6ovmp25c7bd5ov5g"
    state = with_config(
        deployment.state,
        **{"oidc-issuer": ISSUER, "oidc-client-id": "c", "oidc-client-secret": missing},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.unit_status == testing.BlockedStatus(
        f"oidc-client-secret {missing} not found"
        f" (juju grant-secret {missing} microcloud-cluster-manager-k8s)"
    )


def test_issuer_without_client_id_blocks(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    out = ctx.run(
        ctx.on.config_changed(), with_config(deployment.state, **{"oidc-issuer": ISSUER})
    )

    assert out.unit_status == testing.BlockedStatus(
        "set both oidc-issuer and oidc-client-id (or neither) (juju config"
        " microcloud-cluster-manager-k8s oidc-issuer=<issuer URL> oidc-client-id=<client ID>)"
    )


def test_an_issuer_that_is_not_a_url_blocks_the_login_only(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = with_config(
        deployment.state, **{"oidc-issuer": "idp.example.com", "oidc-client-id": "c"}
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.unit_status == testing.BlockedStatus(
        "oidc-issuer 'idp.example.com' is not an http(s) URL"
        " (juju config microcloud-cluster-manager-k8s oidc-issuer=https://<issuer>)"
    )
    env = env_of(out)
    assert "MCM_OIDC_ISSUER" not in env
    assert env["MCM_CONNECTOR_DOMAIN"] == CONFIG["cluster-connector-domain"]


def test_the_login_defaults_are_the_option_table_ones(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = with_config(deployment.state, **{"oidc-issuer": ISSUER, "oidc-client-id": "c"})

    env = env_of(ctx.run(ctx.on.config_changed(), state))

    assert env["MCM_OIDC_GROUPS_CLAIM"] == Options.oidc_groups_claim == "mcm-idp-groups"
    assert env["MCM_OIDC_ADMIN_GROUP"] == Options.oidc_admin_group == "admins"
    assert env["MCM_OIDC_AUDIENCE"] == Options.oidc_audience == ""


def test_secret_without_the_expected_key_blocks(ctx, ca: SigningCA):
    secret = user_secret({"a": "1", "b": "2"})
    deployment = deploy(ctx, ca, secrets=(secret,))
    state = with_config(
        deployment.state,
        **{"oidc-issuer": ISSUER, "oidc-client-id": "c", "oidc-client-secret": secret.id},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.unit_status == testing.BlockedStatus(
        "oidc-client-secret must hold a `client-secret` key"
        f" (juju update-secret {secret.id} client-secret=<secret>)"
    )


def test_oauth_relation_gets_our_client_registration(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    relation = oauth_relation()
    state = dataclasses.replace(
        deployment.state, relations={*deployment.state.relations, relation}
    )

    out = ctx.run(ctx.on.relation_created(relation), state)

    sent = out.get_relation(relation.id).local_app_data
    assert sent["redirect_uri"] == f"https://{MANAGEMENT_DOMAIN}/oidc/callback"
    assert sent["scope"] == "openid email profile offline_access"
    assert json.loads(sent["grant_types"]) == ["authorization_code", "refresh_token"]


def test_oauth_relation_waits_for_the_client_credentials(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    relation = oauth_relation()
    state = dataclasses.replace(
        deployment.state, relations={*deployment.state.relations, relation}
    )

    out = ctx.run(ctx.on.relation_changed(relation), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the oauth provider to register our client (juju status hydra)"
    )


def test_oauth_provider_data_and_secret_reach_the_env_file(ctx, ca: SigningCA):
    secret = testing.Secret({"secret": "hydra-secret"})
    deployment = deploy(ctx, ca, secrets=(secret,))
    relation = oauth_relation(provider_data(secret, ca_chain=[ca.certificate.raw]))
    state = dataclasses.replace(
        with_config(deployment.state, **{"oidc-issuer": ISSUER, "oidc-client-id": "ignored"}),
        relations={*deployment.state.relations, relation},
    )

    out = ctx.run(ctx.on.relation_changed(relation), state)

    env = env_of(out)
    assert env["MCM_OIDC_ISSUER"] == "https://iam.example.com"
    assert env["MCM_OIDC_CLIENT_ID"] == "hydra-client-id"
    assert env["MCM_OIDC_CLIENT_SECRET"] == "hydra-secret"
    bundle = workload_file(out.get_container("cluster-manager"), CA_BUNDLE).read_text()
    assert ca.certificate.raw.strip() in bundle
    assert out.unit_status == testing.ActiveStatus()


def test_non_leader_does_not_write_the_oauth_databag(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    relation = oauth_relation()
    state = dataclasses.replace(
        replace_relation(deployment.state, deployment.relation(deployment.peers)),
        leader=False,
        relations={*deployment.state.relations, relation},
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.get_relation(relation.id).local_app_data == {}
