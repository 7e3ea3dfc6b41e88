"""schemathesis against the OpenAPI schema served by a real `courriel serve`: for every
operation, generated requests (valid and not) never get a server error, and every
answer has a documented status, content type and shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.processes import Served, fresh_database, make_courriel, start_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with fresh_database() as database_url:
        courriel = make_courriel(
            Path(tmp_path_factory.mktemp("schemathesis")) / "data", database_url
        )
        courriel("init")
        token = courriel(
            "token", "create", "--admin", "admin", "--name", "schemathesis", "--json"
        ).json["token"]
        served: Served = start_serve(courriel)
        try:
            base = served.web_url + "/api/v1"
            headers = {"Authorization": f"Bearer {token}"}
            # Some data for the operations to find: the manual's customer.
            created = requests.post(
                base + "/domains",
                json={"name": "monsite.be", "plan": "recommended"},
                headers=headers,
                verify=False,
                timeout=30,
            )
            assert created.status_code == 201, created.text
            with requests.Session() as session:  # one TLS connection, kept alive
                yield {"base": base, "headers": headers, "session": session}
        finally:
            died = served.proc.poll()
            served.stop()
            assert died is None, "courriel serve died during the run:\n" + "".join(served.output)


@pytest.fixture(scope="module")
def api_schema(api_server: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_url(
        api_server["base"] + "/openapi.json", verify=False, timeout=30
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.timeout(1800)
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case: Any, api_server: dict[str, Any]) -> None:
    if re.search(r"/tokens/", case.path) and case.method == "DELETE":
        pytest.skip("revoking the test's own token would end the run")
    case.call_and_validate(
        base_url=api_server["base"].removesuffix("/api/v1"),
        headers=api_server["headers"],
        session=api_server["session"],
        verify=False,
        timeout=30,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
