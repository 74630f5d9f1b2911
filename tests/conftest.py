"""Session-wide access to the real services, with per-test isolation of topics and Redis keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from streams.core import choice as core_choice
from tests.services import Services, ServicesError, discover, forget_keys

_services: Services | None = None

# No timing in tests (speed belongs in benchmarks): Hypothesis's default 200 ms deadline per example failed
# a property test once on a loaded CI box (273 ms for an example that takes 0.2 ms). Tests that set their
# own settings keep them; these are the defaults for the rest.
hypothesis_settings.register_profile("segstream", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("segstream")


def _wants_services(config: pytest.Config) -> bool:
    return "not integration" not in (config.getoption("markexpr", "") or "")


def _get_services() -> Services:
    global _services
    if _services is None:
        try:
            _services = discover()
        except ServicesError as exc:  # one line and exit code 4, not an INTERNALERROR traceback
            raise pytest.UsageError(str(exc)) from None
    return _services


def _xdist_controller(config: pytest.Config) -> bool:
    """This process hands the tests to pytest-xdist workers (`make test` runs `-n`) rather than run them."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist the controller finds the services once (it may start the local stack, and stops it when the
    session ends) and hands their addresses to its workers in the environment, which discovery reads first:
    each worker starting a stack of its own would race for the same ports."""
    if _xdist_controller(config) and _wants_services(config):
        found = _get_services()
        os.environ["SEGSTREAM_KAFKA_BOOTSTRAP"] = found.kafka_bootstrap
        os.environ["SEGSTREAM_REDIS_URL"] = found.redis_url


def pytest_report_header(config: pytest.Config) -> list[str]:
    core = core_choice.describe()
    if not _wants_services(config):
        return [core, "services: not used (integration tests deselected)"]
    s = _get_services()
    return [core, f"kafka: {s.kafka_description} [{s.origin}]", f"redis: {s.redis_description}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """SEGSTREAM_EXPECT_CORE=compiled|pure (`make test`): refuse to run on the other core, so a suite meant
    for the compiled core cannot pass on the pure one because the build was missing or stale."""
    expected = os.environ.get("SEGSTREAM_EXPECT_CORE")
    if expected and (expected == "compiled") != core_choice.compiled():
        raise pytest.UsageError(f"SEGSTREAM_EXPECT_CORE={expected}, but {core_choice.describe()}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path).replace("\\", "/")
        if "tests/integration" in path:
            item.add_marker(pytest.mark.integration)
        if "tests/contract" in path:  # the store's contract: a few seconds, run on a Redis Cluster too
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist, a file's tests go to one worker, one after another (module fixtures are set up once), and
    so do all of tests/chaos: their private stacks take fixed ports. (xdist's `loadgroup` marks do not reach
    its scheduler under pytest 9.2: pytest-xdist issue #1386.)"""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ByFile(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/chaos" if path.startswith("tests/chaos/") else path

    return ByFile(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _services is not None:
        _services.close()


@pytest.fixture(scope="session")
def services() -> Services:
    return _get_services()


@pytest.fixture
def unique() -> str:
    """A short unique token for names that must not collide across tests (topics, groups, prefixes)."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topic_name(unique: str) -> Callable[[str], str]:
    """Isolated topic names: each test gets its own; the broker creates them on first use or on request."""
    return lambda base: f"test-{unique}-{base}"


@pytest.fixture
def redis_prefix(services: Services, unique: str) -> Iterator[str]:
    """An isolated key prefix; every key under it is removed after the test (SCAN, never KEYS)."""
    prefix = f"test:{unique}:"
    yield prefix
    forget_keys(services.redis_url, prefix.rstrip(":"))
