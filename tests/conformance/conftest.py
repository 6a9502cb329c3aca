"""Conformance suites: their async tests run under pytest-asyncio in auto mode."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The LangChain and LangGraph suites define plain ``async def`` tests without markers.
    if config.getoption("asyncio_mode", None) is None:
        config.option.asyncio_mode = "auto"
