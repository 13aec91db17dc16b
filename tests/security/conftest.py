"""Fixtures of the security tests: private copies of a small ingested knowledge base."""

from __future__ import annotations

import pytest

from tests.security.helpers import canary_prompts_dir, copy_data_dir


@pytest.fixture(scope="module")
def kb_module_settings(small_kb, tmp_path_factory):
    """Settings on a private copy of the small ingested knowledge base, shared by one module's tests."""
    return copy_data_dir(small_kb, tmp_path_factory.mktemp("sec-kb") / "data")


@pytest.fixture
def kb_copy(small_kb, tmp_path):
    """Settings on a private copy for one test (it may write)."""
    return copy_data_dir(small_kb, tmp_path / "data")


@pytest.fixture(scope="module")
def canary_settings(kb_module_settings, tmp_path_factory):
    """The same, with a system prompt that carries the canary (Settings.prompts_dir)."""
    prompts = canary_prompts_dir(tmp_path_factory.mktemp("canary") / "prompts")
    return kb_module_settings.with_(prompts_dir=prompts)
