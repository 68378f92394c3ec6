"""sluice: AWS Lambda and Amazon API Gateway on your machine, for tests.

The engine runs in this process (a C++ extension, on a thread of its own);
handler processes are real processes, as with ``sluice serve``::

    import sluice

    with sluice.serve("sluice.yaml", stage="sandbox") as app:
        r = requests.get(app.url("store") + "/movies")
        result = app.invoke("movies-list", {"limit": 3}, qualifier="production")
        assert result.executed_version == "3"
        assert [rec.cold_start for rec in app.records()] == [True, False]

See README.md, "Python package and pytest plugin".
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._sluice import Engine as _Engine
from ._sluice import SluiceError, StackError

from ._sluice import event_kinds as _event_kinds
from ._sluice import generate_event as _generate_event

__all__ = [
    "ApiUrl",
    "Delivery",
    "App",
    "InvokeResult",
    "Record",
    "Recording",
    "Triggered",
    "SluiceError",
    "StackError",
    "serve",
    "generate_event",
    "event_kinds",
    "find_stack",
]

STACK_NAMES = ("sluice.yaml", "sluice.yml", "sluice.json")


def find_stack(directory: Union[str, os.PathLike] = ".") -> str:
    """The stack file of a directory: sluice.yaml, else sluice.yml or sluice.json."""
    for name in STACK_NAMES:
        candidate = os.path.join(os.fspath(directory), name)
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return os.path.abspath(os.path.join(os.fspath(directory), STACK_NAMES[0]))


def _decode(raw: bytes, content_type: str) -> Any:
    """JSON when the payload is JSON, else text, else the bytes themselves."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if "json" in (content_type or "application/json"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class InvokeResult:
    """The answer of one synchronous invocation."""

    payload: Any  # decoded JSON when the function returned JSON, else str (or bytes)
    raw: bytes
    content_type: str
    function_error: Optional[str]  # None on success, else the error type ("Unhandled", "Runtime.ExitError", ...)
    log_tail: str  # the invocation's log: handler output, START, END, REPORT
    executed_version: str
    request_id: str
    duration_ms: float
    cold_start: bool

    @property
    def ok(self) -> bool:
        return self.function_error is None


@dataclass(frozen=True)
class Record:
    """One invocation, as the Lambda service saw it (``app.records()``)."""

    function: str
    version: str  # the version that ran ("$LATEST", "3"); "" when none ran (throttled)
    qualifier: str  # as invoked: "", "$LATEST", "3" or an alias name
    request_id: str
    source: str  # "python", "invoke-api", "api store/sandbox GET /movies", "schedule NAME", ...
    invocation_type: str  # "RequestResponse" or "Event"
    status: str  # "success", "function_error", "throttled" or "error"
    error_type: str
    cold_start: bool
    duration_ms: float
    init_duration_ms: Optional[float]
    max_memory_used_mb: int
    started: float  # seconds since the epoch

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delivery:
    """An asynchronous invocation's record sent to a destination (``app.destinations()``)."""

    function: str  # whose event it was
    request_id: str  # the event's request id
    condition: str  # "Success", "RetriesExhausted", "EventAgeExceeded" or "ZeroReservedConcurrency"
    kind: str  # "on_success", "on_failure" or "dead_letter"
    destination: str  # as the stack names it: a function of the stack or an ARN
    record: Any  # the invocation record as the destination gets it (dead_letter: the event)
    state: str  # "delivered", "failed", "not_sent" (no endpoint for an ARN) or "pending"
    detail: str  # the destination's request id / message id, or why it was not delivered
    time: float  # seconds since the epoch

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(frozen=True)
class Triggered:
    """A schedule fired on demand (``app.trigger(name)``) and the function's answer."""

    schedule: str
    function: str  # as invoked: "name" or "name:qualifier"
    time: float  # the event's "time", seconds since the epoch
    event: Any  # what the function received (the Scheduled Event, or the schedule's input)
    payload: Any  # what it returned (decoded JSON when JSON)
    function_error: Optional[str]  # None on success, else the error type, as InvokeResult's
    request_id: str
    executed_version: str
    cold_start: bool
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.function_error is None


def _epoch(value: Any) -> float:
    """datetime (naive = UTC), ISO 8601 text ("2030-01-01T08:59:00Z") or seconds since the epoch."""
    import datetime as _dt

    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    raise TypeError(f"expected a datetime, an ISO 8601 string or epoch seconds, got {value!r}")


def _payload_bytes(event: Any) -> bytes:
    if event is None:
        return b"{}"
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8")
    return json.dumps(event).encode("utf-8")


class ApiUrl(str):
    """The base URL of an API: a ``str`` (``urlopen``, ``urljoin``, ``requests``, ``json.dumps`` take
    it as it is), also callable for another API or stage of the same app."""

    def __new__(cls, app: "App", api: Optional[str] = None, stage: Optional[str] = None) -> "ApiUrl":
        # With several APIs and none named there is no one base URL: the object can still be
        # called for each API; used as a string it raises what app.url() says.
        error = None
        try:
            value = app.url(api, stage)
        except SluiceError as e:
            if api is not None:
                raise
            value, error = "", e
        self = super().__new__(cls, value)
        self._app = app
        self._api = api
        self._stage = stage
        self._error = error
        return self

    def _value(self) -> str:
        if self._error is not None:
            raise self._error
        return str.__str__(self)

    def __str__(self) -> str:
        return self._value()

    def __format__(self, spec: str) -> str:
        return format(self._value(), spec)

    def __add__(self, other: str) -> str:
        return self._value() + other

    def __radd__(self, other: str) -> str:
        return other + self._value()

    def __call__(self, api: Optional[str] = None, stage: Optional[str] = None) -> str:
        return self._app.url(api if api is not None else self._api, stage if stage is not None else self._stage)

    def __repr__(self) -> str:
        return f"ApiUrl({str.__str__(self)!r})"


class Recording:
    """``app.recording()``: the invocations made (started) between entering and leaving the block,
    oldest first, including those that finish later, such as asynchronous ones (a record exists
    once an invocation has ended)."""

    def __init__(self, app: "App"):
        self._app = app
        self._since: float = 0.0
        self._until: Optional[float] = None

    def __enter__(self) -> "Recording":
        self._since = time.time()
        self._until = None
        return self

    def __exit__(self, *exc: Any) -> None:
        self._until = time.time()

    def records(self, function: Optional[str] = None) -> List[Record]:
        return [r for r in self._app.records(function)
                if r.started >= self._since and (self._until is None or r.started <= self._until)]


# Apps still running when the interpreter exits are stopped first (atexit runs before Python
# finalizes): a daemon thread blocked in one of their calls then returns normally instead of being
# ended by the finalizing interpreter inside C++ code, which aborts the process (SIGABRT).
_live_apps: "weakref.WeakSet[App]" = weakref.WeakSet()


@atexit.register
def _stop_live_apps() -> None:
    for app in list(_live_apps):
        try:
            app.stop()
        except Exception:
            pass


class App:
    """A running sluice: every API of the stack and the Lambda Invoke API on loopback."""

    def __init__(self, engine: _Engine, stack: str, stage: Optional[str]):
        self._engine = engine
        self.stack = stack
        self.stage = stage
        _live_apps.add(self)

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """Drain in-flight requests and stop every handler process. Idempotent."""
        self._engine.stop()

    @property
    def running(self) -> bool:
        return self._engine.running

    @property
    def warnings(self) -> str:
        """Non-fatal problems of the stack file (the report the CLI prints); "" when none."""
        return self._engine.warnings

    def reload(self) -> None:
        """Load the stack file again and apply it; raises StackError (and keeps serving) when invalid."""
        self._engine.reload()

    # ---------------------------------------------------------------- endpoints

    @property
    def endpoints(self) -> Dict[str, Any]:
        """``{"lambda": URL, "apis": {NAME: {"type", "url", "stages"}}, "urls": {FUNCTION: URL}}``, as
        ``sluice serve`` prints."""
        return self._engine.endpoints()

    @property
    def lambda_endpoint(self) -> str:
        """The Lambda Invoke API, for ``boto3.client("lambda", endpoint_url=...)``."""
        return self._engine.endpoints()["lambda"]

    @property
    def region(self) -> str:
        return self._engine.endpoints().get("region", "us-east-1")

    def url(self, api: Optional[str] = None, stage: Optional[str] = None) -> str:
        """The base URL of an API's stage: ``http://127.0.0.1:PORT/STAGE`` (no stage part for
        an HTTP API's ``$default`` stage). ``api`` may be left out when the stack has one API;
        ``stage`` defaults to the stage given to serve(), else the API's only stage."""
        apis = self._engine.endpoints()["apis"]
        if api is None:
            if not apis:
                raise SluiceError(f"{self.stack} has no APIs (functions are reached with app.invoke(), "
                                  "or app.function_url() for those with url:)")
            if len(apis) != 1:
                raise SluiceError(
                    f"{self.stack} has {len(apis)} APIs ({', '.join(sorted(apis))}): "
                    "name the one you want, e.g. app.url(\"%s\")" % sorted(apis)[0]
                )
            api = next(iter(apis))
        if api not in apis:
            raise SluiceError(f"no API named {api!r} in {self.stack}; APIs: {', '.join(sorted(apis)) or 'none'}")
        info = apis[api]
        stages: List[str] = list(info["stages"])
        if stage is None:
            if self.stage is not None and self.stage in stages:
                stage = self.stage
            elif len(stages) == 1:
                stage = stages[0]
            elif self.stage is not None:
                raise SluiceError(f"API {api!r} has no stage {self.stage!r}; its stages: {', '.join(stages)}")
            else:
                raise SluiceError(
                    f"API {api!r} has stages {', '.join(stages)}: pass stage=... here or to sluice.serve()"
                )
        elif stage not in stages:
            raise SluiceError(f"API {api!r} has no stage {stage!r}; its stages: {', '.join(stages)}")
        if stage == "$default":
            return info["url"]
        return f"{info['url']}/{stage}"

    def function_url(self, function: str) -> str:
        """The local address of a function's URL (``url:`` in the stack file), e.g.
        ``http://127.0.0.1:PORT``; paths and query strings go after it as on
        ``https://<url-id>.lambda-url.<region>.on.aws``."""
        urls = self._engine.endpoints().get("urls", {})
        if function not in urls:
            raise SluiceError(
                f"{function!r} has no function URL in {self.stack}; functions with one: {', '.join(sorted(urls)) or 'none'}"
            )
        return urls[function]

    # ---------------------------------------------------------------- Lambda

    def invoke(self, function: str, event: Any = None, qualifier: Optional[str] = None) -> InvokeResult:
        """One synchronous invocation. ``event`` is JSON-encoded unless it is str or bytes.
        A function error is a result (``function_error``), not an exception; what the service
        refuses (unknown function, throttling, invalid JSON) raises SluiceError with ``.code``."""
        r = self._engine.invoke(function, _payload_bytes(event), qualifier or "", "python")
        raw = r["payload"]
        return InvokeResult(
            payload=_decode(raw, r["content_type"]),
            raw=raw,
            content_type=r["content_type"],
            function_error=r["function_error"],
            log_tail=r["log_tail"],
            executed_version=r["executed_version"],
            request_id=r["request_id"],
            duration_ms=r["duration_ms"],
            cold_start=r["cold_start"],
        )

    def invoke_async(self, function: str, event: Any = None, qualifier: Optional[str] = None) -> str:
        """An asynchronous (Event) invocation, retried on failure as Lambda does; returns the request id."""
        return self._engine.invoke_async(function, _payload_bytes(event), qualifier or "", "python")

    def publish(self, function: str, description: str = "") -> str:
        """Publish $LATEST as a numbered version (as ``sluice publish``); returns the version."""
        return self._engine.publish(function, description)["version"]

    def records(self, function: Optional[str] = None) -> List[Record]:
        """Every invocation so far, oldest first by when it started (optionally of one function);
        an invocation is recorded once it has ended."""
        out = sorted((Record(**r) for r in self._engine.records()), key=lambda r: r.started)
        if function is not None:
            out = [r for r in out if r.function == function]
            if not out:
                self._known_function(function)
        return out

    def _known_function(self, function: str) -> None:
        """Raises for a name the stack does not have, so that a misspelt name cannot pass an
        assertion on an empty list or log."""
        if self.running:
            known = self._engine.functions()
            if function not in known:
                raise SluiceError(f"no function named {function!r}; functions: {', '.join(known)}")

    def clear_records(self) -> None:
        self._engine.clear_records()

    def destinations(self, function: Optional[str] = None, wait: float = 5.0) -> List[Delivery]:
        """Records of asynchronous invocations sent to ``on_success`` / ``on_failure``
        destinations, oldest first (optionally of one function's events). Waits up to
        ``wait`` seconds for queued events and deliveries under way to settle first::

            rid = app.invoke_async("orders", {"id": 1})
            [d] = app.destinations("orders")
            assert d.condition == "Success" and d.record["requestContext"]["requestId"] == rid
        """
        out = []
        for d in self._engine.destinations(wait):
            d = dict(d)
            try:
                d["record"] = json.loads(d["record"])
            except ValueError:  # a dead-letter queue gets the event as it was sent
                pass
            out.append(Delivery(**d))
        if function is not None:
            out = [d for d in out if d.function == function]
            if not out:
                self._known_function(function)
        return out

    def recording(self) -> "Recording":
        """The invocations made while a ``with`` block runs (whoever made them)::

            with app.recording() as rec:
                requests.get(app.url() + "/movies")
            assert [(r.function, r.cold_start) for r in rec.records()] == [("movies-list", False)]
        """
        return Recording(self)

    def logs(self, function: str, request_id: Optional[str] = None) -> str:
        """The function's log so far (handler output and the START/END/REPORT lines), one line each."""
        lines = self._engine.logs(function)
        if not lines:
            self._known_function(function)
        if request_id is not None:
            lines = [l for l in lines if l["request_id"] == request_id]
        return "".join(l["text"].replace("\r", "\n") + "\n" for l in lines)

    def access_log(self) -> List[str]:
        """One line per API request, as ``sluice serve`` prints them."""
        return list(self._engine.access_log())

    # ---------------------------------------------------------------- schedules

    def trigger(self, schedule: str) -> Triggered:
        """Fire a schedule of the stack now, as ``sluice trigger schedule NAME`` does, and wait for
        the function's answer (a disabled schedule fires too). Raises SluiceError naming the
        schedules there are when there is no such schedule."""
        t = self._engine.trigger(schedule)
        return Triggered(
            schedule=t["schedule"],
            function=t["function"],
            time=t["time"],
            event=_decode(t["event"], "application/json"),
            payload=_decode(t["payload"], "application/json"),
            function_error=t["function_error"],
            request_id=t["request_id"],
            executed_version=t["executed_version"],
            cold_start=t["cold_start"],
            duration_ms=t["duration_ms"],
        )

    @property
    def schedules(self) -> List[str]:
        """The names of the stack's schedules."""
        return list(self._engine.schedules())

    def schedule_time(self) -> "datetime.datetime":
        """The schedule clock's current time (UTC)."""
        import datetime as _dt

        return _dt.datetime.fromtimestamp(self._engine.schedule_time(), _dt.timezone.utc)

    def set_schedule_time(self, when: Any) -> None:
        """Move the schedule clock to ``when`` (datetime, ISO text or epoch seconds); what became due fires."""
        self._engine.set_schedule_time(_epoch(when))

    def advance_schedule_clock(self, seconds: float) -> None:
        """Move the schedule clock on; every firing that became due happens (asynchronously, as on AWS)."""
        self._engine.advance_schedule_clock(seconds)

    def next_schedule_time(self, schedule: str) -> "Optional[datetime.datetime]":
        """When the schedule fires next on its own (None: disabled, or never again)."""
        import datetime as _dt

        if schedule not in self._engine.schedules():
            raise SluiceError(f"no schedule named {schedule!r}; schedules: {', '.join(self._engine.schedules()) or '(none)'}")
        t = self._engine.next_schedule_time(schedule)
        return None if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc)

    def __repr__(self) -> str:
        return f"<sluice.App {self.stack} {'running' if self.running else 'stopped'}>"


def serve(
    stack: Union[str, os.PathLike, None] = None,
    stage: Optional[str] = None,
    *,
    freeze: bool = True,
    sandbox: bool = True,
    idle_timeout: Optional[float] = None,
    init_timeout: Optional[float] = None,
    async_retry_delays: Optional[Sequence[float]] = None,
    integration_timeout: Optional[float] = None,
    account_concurrency: Optional[int] = None,
    account_throttle: Optional[Tuple[float, int]] = None,
    watch: bool = True,
    lambda_port: int = 0,
    api_port: int = 0,
    host: str = "127.0.0.1",
    interpreters: Optional[Dict[str, str]] = None,
    log_format: str = "",
    state_dir: Union[str, os.PathLike, None] = None,
    echo_logs: bool = False,
    drain_timeout: float = 5.0,
    schedules: bool = True,
    event_sources: bool = True,
    schedule_clock: Any = None,
    schedule_speed: float = 1.0,
    env_vars: Union[str, os.PathLike, Dict[str, Dict[str, Any]], None] = None,
    debug_port: Optional[int] = None,
    debug_function: Optional[str] = None,
    debug_args: Optional[Sequence[str]] = None,
) -> App:
    """Load and validate the stack file and start serving it; use as a context manager
    (or call ``stop()``). Ports default to ephemeral ones. Durations are in seconds.
    Schedules fire on their own unless ``schedules=False``; ``schedule_clock`` (a datetime, ISO
    text or epoch seconds) sets the schedule time at start and ``schedule_speed=0`` stops that
    clock, so that only ``advance_schedule_clock()`` / ``set_schedule_time()`` move it.
    SQS event sources are polled unless ``event_sources=False``.
    ``env_vars`` overrides declared environment variables, as ``--env-vars`` (a dict in SAM CLI's
    format, ``{"Parameters": {...}, "FUNCTION": {...}}``, or the path of such a JSON file);
    ``debug_port``, ``debug_function`` and ``debug_args`` start a function under a debugger, as
    ``--debug-port``, ``--debug-function`` and ``--debug-args``.

    Raises StackError (``.problems``: one line per problem) when the stack file is broken,
    SluiceError when something else is refused (a busy port, say)."""
    path = find_stack(".") if stack is None else os.path.abspath(os.fspath(stack))
    if os.path.isdir(path):
        path = find_stack(path)
    env_vars_json, env_vars_source = "", "env_vars"
    if isinstance(env_vars, dict):
        import json as _json

        env_vars_json = _json.dumps(env_vars)
    elif env_vars is not None:
        env_vars_source = os.fspath(env_vars)
        with open(env_vars_source, encoding="utf-8") as f:
            env_vars_json = f.read()
    engine = _Engine(
        path,
        host=host,
        lambda_port=lambda_port,
        api_port=api_port,
        freeze=freeze,
        sandbox=sandbox,
        watch=watch,
        idle_timeout=idle_timeout,
        init_timeout=init_timeout,
        async_retry_delays=list(async_retry_delays) if async_retry_delays is not None else None,
        integration_timeout=integration_timeout,
        account_concurrency=account_concurrency,
        account_throttle=tuple(account_throttle) if account_throttle is not None else None,
        interpreters=dict(interpreters or {}),
        log_format=log_format,
        state_dir=os.fspath(state_dir) if state_dir is not None else "",
        echo_logs=echo_logs,
        drain_timeout=drain_timeout,
        schedules=schedules,
        event_sources=event_sources,
        schedule_clock=_epoch(schedule_clock) if schedule_clock is not None else None,
        schedule_speed=schedule_speed,
        env_vars_json=env_vars_json,
        env_vars_source=env_vars_source,
        debug_port=debug_port,
        debug_function=debug_function or "",
        debug_args=list(debug_args) if debug_args is not None else None,
    )
    engine.start()
    return App(engine, path, stage)


def generate_event(source: str, kind: str, sets: Optional[Dict[str, Any]] = None, **values: Any) -> Dict[str, Any]:
    """A realistic sample event, as ``sluice generate-event SOURCE KIND --set key=value`` prints it::

        sluice.generate_event("sqs", "receive-message", body="hello", count=2)
        sluice.generate_event("apigateway", "aws-proxy", method="POST", path="/notes",
                              body='{"text": "x"}', header={"content-type": "application/json"})

    A dict for a ``NAME.``-family key (``header``, ``query``, ``stage_variable``, ...) sets one key
    per entry; other dicts and lists are passed as JSON; ``sets`` takes keys verbatim
    (``{"header.x-api-key": "k"}``). Raises ValueError for an unknown source, kind or key."""
    pairs = []
    families = set()
    for k in _event_kinds():
        if k["source"] == source and k["kind"] == kind:
            families = {s[: -len(".NAME")] for s in k["settable"] if s.endswith(".NAME")}
    for key, value in values.items():
        if isinstance(value, dict) and key in families:
            pairs.extend((f"{key}.{name}", _set_text(v)) for name, v in value.items())
        else:
            pairs.append((key, _set_text(value)))
    pairs.extend((key, _set_text(value)) for key, value in (sets or {}).items())
    return json.loads(_generate_event(source, kind, pairs))


def _set_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def event_kinds() -> List[Dict[str, Any]]:
    """Every SOURCE KIND pair generate_event() knows, with a description and the keys it accepts."""
    return list(_event_kinds())
