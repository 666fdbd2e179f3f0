"""One scaled-out cluster (tests/cluster/stack.py) per module; PostgreSQL only (a database of its
own is created on the TEST_DATABASE_URL server and dropped afterwards)."""
from __future__ import annotations

import pytest

from tests.cluster.stack import Cluster
from tests.harness.postgres import admin_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    url = admin_url("cluster")
    built = Cluster(url, tmp_path_factory.mktemp("cluster"))
    try:
        built.start()
        yield built
    finally:
        built.stop()


@pytest.fixture
def stack(cluster):
    """The cluster for one test; afterwards (tests/cluster/stack.py `Cluster.reset`) its agents
    take no more calls, its SDK participants leave, and whatever it killed runs again."""
    try:
        yield cluster
    finally:
        cluster.reset()
