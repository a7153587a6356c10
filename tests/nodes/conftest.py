"""Session fixtures of the local-node tier: clusters made by `oscar-deploy up`, removed even when tests fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.nodes.harness import ClusterFactory, LocalCluster, remove_stale_test_clusters


@pytest.fixture(scope="session")
def cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    remove_stale_test_clusters()
    factory = ClusterFactory(tmp_path_factory.mktemp("local-nodes"))
    try:
        yield factory
    finally:
        left = factory.cleanup()
        assert left == [], f"test clusters left behind: {left}"


@pytest.fixture(scope="session")
def local_cluster(cluster_factory: ClusterFactory) -> LocalCluster:
    """A small amd64 cluster (server-0, agent-0) shared by the tier's tests; they keep it running."""
    return cluster_factory.create("shared")
