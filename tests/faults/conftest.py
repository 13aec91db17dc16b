"""Fixtures of the fault tests: the fault-injecting LLM server and a small ingested knowledge base."""

from __future__ import annotations

import pytest

from tests.faults.fault_server import FaultServer
from tests.security.helpers import copy_data_dir


@pytest.fixture(scope="module")
def fault_kb(small_kb, tmp_path_factory):
    return copy_data_dir(small_kb, tmp_path_factory.mktemp("fault-kb") / "data")


@pytest.fixture
def fault_server():
    with FaultServer() as server:
        yield server
