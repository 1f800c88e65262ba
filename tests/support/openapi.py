"""Check management API responses against our OpenAPI document and the published contract.

Our document (shipped in the workload) must describe every response exactly. The published
contract (`../shared/contract/cluster-manager-api.yaml`, beside the repository where it is:
a plain clone has none, and then only our document is checked) lists fewer status codes; a
response with a status it does not list must still be a valid envelope by its generic
`Response` schema, and a path it does not list (our extras) is not checked against it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_schema_validator import OAS30Validator

REPO_ROOT = Path(__file__).resolve().parents[2]
OUR_DOCUMENT = REPO_ROOT / "workload" / "cluster_manager" / "management" / "openapi.yaml"
PUBLISHED_CONTRACT = REPO_ROOT.parent / "shared" / "contract" / "cluster-manager-api.yaml"


CONTRACT_MISSING = (
    f"the published contract is not beside the repository ({PUBLISHED_CONTRACT});"
    " responses are checked against our own OpenAPI document only"
)


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@cache
def our_document() -> OpenAPI:
    """Our own document, as shipped in the workload package."""
    return OpenAPI.from_dict(_load(OUR_DOCUMENT))


@cache
def published_contract() -> tuple[OpenAPI, Any] | None:
    """The upstream contract and a validator of its `Response` envelope; None without it."""
    if not PUBLISHED_CONTRACT.is_file():
        return None
    spec = _load(PUBLISHED_CONTRACT)
    envelope = {**spec["components"]["schemas"]["Response"], "components": spec["components"]}
    return OpenAPI.from_dict(spec), OAS30Validator(envelope)


def validate_response(response: requests.Response) -> None:
    """Raise unless `response` satisfies our document and (where present) the contract."""
    request = RequestsOpenAPIRequest(response.request)
    wrapped = RequestsOpenAPIResponse(response)
    our_document().validate_response(request, wrapped)
    published = published_contract()
    if published is None:
        return
    contract, envelope = published
    try:
        contract.validate_response(request, wrapped)
    except (PathNotFound, OperationNotFound):
        return  # one of our extra endpoints; upstream has nothing to compare with
    except ResponseNotFound:
        envelope.validate(response.json())


class ValidatedSession(requests.Session):
    """A session whose every response is checked by `validate_response` before it is returned.

    Requests whose response is meant to break the documents (an unknown path, for example)
    belong on a plain `requests.Session`.
    """

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):  # type: ignore[override]
        """Send the request, then validate the response against both documents."""
        response = super().request(method, url, *args, **kwargs)
        validate_response(response)
        return response


def validated_session(base: requests.Session) -> ValidatedSession:
    """A validating copy of `base`: same headers and TLS verification."""
    session = ValidatedSession()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify` (requests #3829)
    session.headers.update(base.headers)
    session.verify = base.verify
    return session
