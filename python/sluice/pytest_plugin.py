"""pytest plugin for sluice: a server for the tests of a serverless project.

Enable it in a conftest.py (``pytest_plugins = ["sluice.pytest_plugin"]``) or on the
command line (``pytest -p sluice.pytest_plugin``). Fixtures:

``sluice_app``
    A running sluice for the project's stack file. One server per session for each
    (stack, stage, options): the project's ``sluice.yaml`` in the rootdir, or the file
    named by ``--sluice-stack``, the ``sluice_stack`` ini option, or a
    ``@pytest.mark.sluice(stack=..., stage=..., **serve_options)`` marker.
``sluice_session``
    The same default server as a session-scoped fixture, for your own session fixtures.
``api_url``
    The base URL of the API (``f"{api_url}/movies"``); call it for another API or stage:
    ``api_url("store", stage="production")``.
``lambda_client``
    A boto3 Lambda client pointed at sluice (dummy credentials, the stack's region).
``sluice_fresh_app``
    A server of its own for this test (cold starts guaranteed), stopped after it.
``sluice_serve``
    A factory: ``sluice_serve(stack=None, stage=None, **serve_options)`` starts servers
    that are stopped after the test.

Published versions go to a state directory of the session (a temporary directory, so tests
never touch the project's ``.sluice/``) unless ``--sluice-state-dir`` or the
``sluice_state_dir`` ini option names one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

import sluice


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("sluice", "sluice (local AWS Lambda + API Gateway)")
    group.addoption("--sluice-stack", default=None, help="stack file the sluice fixtures serve (default: sluice.yaml in the rootdir)")
    group.addoption("--sluice-stage", default=None, help="default API stage for sluice_app / api_url")
    group.addoption("--sluice-state-dir", default=None, help="where published versions live (default: a temporary directory)")
    group.addoption("--sluice-echo-logs", action="store_true", default=None, help="copy function logs to stderr as they happen")
    parser.addini("sluice_stack", "stack file the sluice fixtures serve, relative to the ini file", default=None)
    parser.addini("sluice_stage", "default API stage for sluice_app / api_url", default=None)
    parser.addini("sluice_state_dir", "where published versions live, relative to the ini file", default=None)
    parser.addini("sluice_echo_logs", "copy function logs to stderr", type="bool", default=False)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "sluice(stack=None, stage=None, **serve_options): which stack file, stage and sluice.serve() "
        "options the sluice fixtures use for this test (a relative stack is relative to the test file)",
    )


def _ini_path(config: Any, name: str) -> Optional[str]:
    value = config.getini(name)
    if not value:
        return None
    base = Path(config.inipath).parent if getattr(config, "inipath", None) else Path(config.rootpath)
    return str((base / value).resolve())


def _default_stack(config: Any) -> str:
    opt = config.getoption("--sluice-stack")
    if opt:
        return str(Path(opt).resolve())
    ini = _ini_path(config, "sluice_stack")
    if ini:
        return ini
    return sluice.find_stack(str(config.rootpath))


def _default_stage(config: Any) -> Optional[str]:
    return config.getoption("--sluice-stage") or config.getini("sluice_stage") or None


class _Servers:
    """The session's servers, one per configuration, stopped at the end of the session."""

    def __init__(self, config: Any, state_dir: str):
        self.config = config
        self.state_dir = state_dir
        self.apps: Dict[Tuple, sluice.App] = {}
        echo = config.getoption("--sluice-echo-logs")
        self.echo_logs = bool(echo) if echo is not None else bool(config.getini("sluice_echo_logs"))

    def settings(self, request: Any, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        settings: Dict[str, Any] = {"stack": _default_stack(self.config), "stage": _default_stage(self.config)}
        marker = request.node.get_closest_marker("sluice") if request is not None else None
        if marker is not None:
            kwargs = dict(marker.kwargs)
            if marker.args:
                kwargs.setdefault("stack", marker.args[0])
            if kwargs.get("stack") is not None:
                stack = Path(kwargs["stack"])
                if not stack.is_absolute():
                    stack = Path(request.node.fspath).parent / stack
                kwargs["stack"] = str(stack.resolve())
            settings.update({k: v for k, v in kwargs.items() if v is not None or k == "stage"})
        if overrides:
            settings.update(overrides)
        settings.setdefault("state_dir", self.state_dir)
        settings.setdefault("echo_logs", self.echo_logs)
        return settings

    def start(self, settings: Dict[str, Any]) -> sluice.App:
        settings = dict(settings)
        return sluice.serve(settings.pop("stack"), settings.pop("stage", None), **settings)

    def shared(self, settings: Dict[str, Any]) -> sluice.App:
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        app = self.apps.get(key)
        if app is None or not app.running:
            app = self.start(settings)
            self.apps[key] = app
        return app

    def stop_all(self) -> None:
        for app in self.apps.values():
            app.stop()
        self.apps.clear()


@pytest.fixture(scope="session")
def _sluice_servers(request: Any, tmp_path_factory: Any):
    config = request.config
    state = config.getoption("--sluice-state-dir") or _ini_path(config, "sluice_state_dir")
    state_dir = str(Path(state).resolve()) if state else str(tmp_path_factory.mktemp("sluice-state"))
    servers = _Servers(config, state_dir)
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def sluice_session(_sluice_servers: _Servers) -> sluice.App:
    """The default server (no marker), session-scoped."""
    return _sluice_servers.shared(_sluice_servers.settings(None))


@pytest.fixture
def sluice_app(request: Any, _sluice_servers: _Servers) -> sluice.App:
    """The session's server for this test's stack, stage and options."""
    return _sluice_servers.shared(_sluice_servers.settings(request))


@pytest.fixture
def sluice_fresh_app(request: Any, _sluice_servers: _Servers):
    """A server of this test's own: every function's first invocation is a cold start."""
    app = _sluice_servers.start(_sluice_servers.settings(request))
    yield app
    app.stop()


@pytest.fixture
def sluice_serve(request: Any, _sluice_servers: _Servers):
    """Factory: ``sluice_serve(stack=None, stage=None, **serve_options)``, stopped after the test."""
    started = []

    def start(stack: Optional[str] = None, stage: Optional[str] = None, **options: Any) -> sluice.App:
        overrides: Dict[str, Any] = dict(options)
        if stack is not None:
            path = Path(stack)
            if not path.is_absolute():
                path = Path(request.node.fspath).parent / path
            overrides["stack"] = str(path.resolve())
        if stage is not None:
            overrides["stage"] = stage
        app = _sluice_servers.start(_sluice_servers.settings(request, overrides))
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


@pytest.fixture
def api_url(sluice_app: sluice.App) -> sluice.ApiUrl:
    """The base URL of the stack's API on the default stage; call it for another API or stage."""
    return sluice.ApiUrl(sluice_app)


@pytest.fixture
def lambda_client(sluice_app: sluice.App):
    """A boto3 Lambda client pointed at sluice_app (dummy credentials, the stack's region)."""
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=sluice_app.lambda_endpoint,
        region_name=sluice_app.region,
        aws_access_key_id="sluice",
        aws_secret_access_key="sluice",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=900),
    )
