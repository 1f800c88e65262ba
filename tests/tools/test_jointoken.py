import base64
import datetime
import json

import pytest

from tools.jointoken import JoinToken, TokenError, format_rfc3339nano, split_host_port

FINGERPRINT = "0123456789abcdef" * 4
# Base64 of the exact compact JSON below, computed once and pasted (independent of the codec).
EXPECTED_JSON = (
    '{"secret":"not_so_secret","expires_at":"2125-04-10T12:32:00Z",'
    '"addresses":["localhost:3000"],"server_name":"localhost",'
    f'"fingerprint":"{FINGERPRINT}"}}'
)
EXPECTED_TOKEN = (
    "eyJzZWNyZXQiOiJub3Rfc29fc2VjcmV0IiwiZXhwaXJlc19hdCI6IjIxMjUtMDQtMTBUMTI6MzI6MDBaIiwiYWRk"
    "cmVzc2VzIjpbImxvY2FsaG9zdDozMDAwIl0sInNlcnZlcl9uYW1lIjoibG9jYWxob3N0IiwiZmluZ2VycHJpbnQi"
    "OiIwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"
    "In0="
)
TOKEN = JoinToken(
    secret="not_so_secret",
    expires_at="2125-04-10T12:32:00Z",
    addresses=("localhost:3000",),
    server_name="localhost",
    fingerprint=FINGERPRINT,
)


def _encode(data: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_hand_built_token_is_the_base64_of_the_expected_json():
    assert base64.b64decode(EXPECTED_TOKEN).decode() == EXPECTED_JSON


def test_encode_is_byte_exact():
    assert TOKEN.encode() == EXPECTED_TOKEN


def test_decode_of_the_expected_token_gives_every_field():
    assert JoinToken.decode(EXPECTED_TOKEN) == TOKEN


def test_decode_then_encode_round_trips_byte_exact():
    assert JoinToken.decode(EXPECTED_TOKEN).encode() == EXPECTED_TOKEN


@pytest.mark.parametrize(
    ("field", "empty", "message"),
    [
        ("server_name", "", "No server name"),
        ("addresses", [], "No cluster member addresses"),
        ("secret", "", "No secret"),
        ("fingerprint", "", "No certificate fingerprint"),
    ],
)
def test_decode_rejects_an_empty_required_field(field: str, empty: object, message: str):
    data = json.loads(EXPECTED_JSON)
    data[field] = empty

    with pytest.raises(TokenError, match=message):
        JoinToken.decode(_encode(data))


@pytest.mark.parametrize("field", ["server_name", "addresses", "secret", "fingerprint"])
def test_decode_rejects_a_missing_required_field(field: str):
    data = json.loads(EXPECTED_JSON)
    del data[field]

    with pytest.raises(TokenError):
        JoinToken.decode(_encode(data))


def test_decode_does_not_check_expiry():
    data = json.loads(EXPECTED_JSON)
    data["expires_at"] = "2001-01-01T00:00:00Z"

    assert JoinToken.decode(_encode(data)).expires_at == "2001-01-01T00:00:00Z"


def test_decode_rejects_unpadded_base64():
    with pytest.raises(TokenError):
        JoinToken.decode(EXPECTED_TOKEN.rstrip("="))


def test_decode_rejects_urlsafe_alphabet():
    token = base64.urlsafe_b64encode(b'{"secret":"\xff\xfe"}').decode()
    assert "-" in token or "_" in token

    with pytest.raises(TokenError):
        JoinToken.decode(token)


def test_decode_rejects_json_that_is_not_an_object():
    with pytest.raises(TokenError):
        JoinToken.decode(base64.b64encode(b"[1,2]").decode())


def test_encode_escapes_html_characters_like_go():
    token = JoinToken("s", "2125-04-10T12:32:00Z", ("h:1",), "a<b>&c", "f")

    assert '"server_name":"a\\u003cb\\u003e\\u0026c"' in token.to_json()


def test_rfc3339nano_drops_trailing_fraction_zeros_and_uses_z_for_utc():
    moment = datetime.datetime(2026, 8, 23, 10, 0, 0, 120000, tzinfo=datetime.UTC)

    assert format_rfc3339nano(moment) == "2026-08-23T10:00:00.12Z"


def test_rfc3339nano_writes_a_numeric_offset():
    zone = datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))

    assert format_rfc3339nano(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=zone)) == (
        "2026-01-02T03:04:05-05:30"
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [("cc.example.com:443", ("cc.example.com", 443)), ("[::1]:9443", ("::1", 9443))],
)
def test_split_host_port_accepts_names_and_bracketed_ipv6(address: str, expected: tuple):
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["cc.example.com", "::1:443", ":443", "host:port"])
def test_split_host_port_rejects_malformed_addresses(address: str):
    with pytest.raises(TokenError):
        split_host_port(address)
