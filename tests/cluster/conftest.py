"""The platform of the manual's provider on three hosting servers (issue 15), shared by
the tests of a worker: monsite.be on maximusconfessor, autre.be on moses,
vonmuenchhausen holding nothing. Tests that stop a node start it again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.cluster import Cluster, running_cluster
from tests.fixtures.platform import STRONG
from tests.fixtures.sink import Sink


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    sink = Sink().start()
    env = {"COURRIEL_QUEUE_TRANSPORT": f"*=127.0.0.1:{sink.port}"}
    try:
        with running_cluster(tmp_path_factory.mktemp("cluster"), env=env) as cluster:
            cluster.sink = sink  # type: ignore[attr-defined]
            cli = cluster.cli
            for domain, server in (("monsite.be", "maximusconfessor"), ("autre.be", "moses")):
                cli("domain", "create", domain, "--plan", "recommended", "--server", server)
                cli("user", "create", domain, "--pass", STRONG, "--extra", "info")
            yield cluster
    finally:
        sink.stop()
