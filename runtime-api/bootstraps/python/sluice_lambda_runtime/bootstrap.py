"""sluice's Python runtime bootstrap: the client side of the AWS Lambda Runtime API.

sluice runs `<python3> ../bootstrap.py` with the function's code directory as cwd and the
environment AWS gives a managed Python runtime; that small script imports this module, so its
byte code is cached instead of compiled at every cold start. This file is named bootstrap.py
too because, as in the official runtime, tracebacks drop their leading frames from any file
whose path contains "/bootstrap.py".

It behaves, as seen by handler code and by the invoker, like AWS's own runtime (awslambdaric):
same context object, same logging handler and log line formats, same error payloads, same
init-error reports. Written for a fast start: only modules the interpreter has already loaded
are imported up front (sys, os, time, plus the C modules _json and _socket); `logging` is set
up the moment user code imports it, `traceback` and `json` only on error paths.
See ../README.md for the contract with sluice and the known differences.
"""

import sys
import os
from time import time as _time, time_ns as _time_ns, gmtime as _gmtime, strftime as _strftime

# --------------------------------------------------------------------------------------
# Process set-up that must happen before any user code is imported.

# The folder sluice launches ../bootstrap.py from.
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_sys_path():
    # The interpreter put this bootstrap's folder first; it must not shadow user modules.
    here = {_HERE, os.path.realpath(_HERE)}
    rest = [p for p in sys.path if p not in here]
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    front = [task_root]
    opt = os.environ.get("_SLUICE_OPT_DIR")
    if opt:
        vi = sys.version_info
        front.append("%s/python/lib/python%d.%d/site-packages" % (opt, vi[0], vi[1]))
        front.append(opt + "/python")
    sys.path[:] = front + [p for p in rest if p not in front]
    # Private variables are for this bootstrap only: handlers see AWS's environment.
    for key in [k for k in os.environ if k.startswith("_SLUICE_")]:
        del os.environ[key]


_setup_sys_path()

_ENV = os.environ
_RUNTIME_API = _ENV.get("AWS_LAMBDA_RUNTIME_API")
_HANDLER = sys.argv[1] if len(sys.argv) > 1 else _ENV.get("_HANDLER", "")
_JSON_LOGS = (_ENV.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_raw_level = _ENV.get("AWS_LAMBDA_LOG_LEVEL")
# awslambdaric maps an unset level to "" and exactly "TRACE" to "DEBUG", then upper-cases.
_LOG_LEVEL = {None: "", "TRACE": "DEBUG"}.get(_raw_level, _raw_level).upper()
_EXEC_ENV = _ENV.get("AWS_EXECUTION_ENV", "")
# From python3.12 on, the official serializer keeps non-ASCII characters as they are.
_ENSURE_ASCII = _EXEC_ENV not in (
    "AWS_Lambda_python3.12",
    "AWS_Lambda_python3.13",
    "AWS_Lambda_python3.14",
    "AWS_Lambda_python3.15",
)

_GLOBAL_AWS_REQUEST_ID = None
_GLOBAL_TENANT_ID = None

_ERROR_LOG_LINE_TERMINATE = "\r"
_ERROR_LOG_IDENT = "\u00a0"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function "
    "code. However, in rare cases, a Lambda runtime update can cause unexpected function "
    "behavior. For functions using managed runtimes, runtime updates can be triggered by a "
    "function change, or can be applied automatically. To determine if the runtime has been "
    "updated, check the runtime version in the INIT_START log entry. If this error correlates "
    "with a change in the runtime version, you may be able to mitigate this error by "
    "temporarily rolling back to the previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


class Unbuffered(object):
    """Flushes after every write, as the official runtime does, so that stdout and stderr
    (one pipe for sluice) keep their exact order."""

    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        pass

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


# The platform's log descriptor (_LAMBDA_TELEMETRY_LOG_FD, taken out of the environment before
# user code runs, as awslambdaric does): each record goes there as one frame, a 4-byte type,
# a 4-byte length and an 8-byte timestamp in microseconds (big-endian), then the message, and
# stays one record however many lines it has. Without it, records go to stdout.
def _take_log_fd():
    value = _ENV.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_LOG_FD = _take_log_fd()

# Frame types: 0xa55a in the high half, the level (DEBUG 2 .. CRITICAL 6, 0 none) shifted left
# by two, the format in the two low bits (3 text, 2 JSON).
_TEXT_FRAME = 0xA55A0003
_JSON_FRAME = 0xA55A0002


def _frame_type(levelno, json_format):
    rank = {10: 2, 20: 3, 30: 4, 40: 5, 50: 6}.get(levelno, 0)
    return (_JSON_FRAME if json_format else _TEXT_FRAME) | rank << 2


def _write_frame(msg, frame_type):
    data = msg.encode("utf-8")
    view = memoryview(
        frame_type.to_bytes(4, "big") + len(data).to_bytes(4, "big")
        + (_time_ns() // 1000).to_bytes(8, "big") + data
    )
    while view:
        view = view[os.write(_LOG_FD, view):]


def _sink_write(msg):
    # The official StandardLogSink writes through whatever sys.stdout is at the time.
    sys.stdout.write(msg)


# --------------------------------------------------------------------------------------
# JSON with the official serializer's behaviour, on the C accelerator alone (importing the
# `json` package pulls in `re` and costs milliseconds on a cold interpreter).


def _make_json():
    import _json

    encode_str = _json.encode_basestring_ascii if _ENSURE_ASCII else _json.encode_basestring
    # Values that must be written verbatim (Decimal) go through the C encoder as marked
    # strings and are put back afterwards.
    mark = "\x00sluice-raw-%s:" % os.urandom(8).hex()
    mark_encoded = encode_str(mark)[:-1]
    raws = []

    def default(o):
        dec = sys.modules.get("decimal")
        if dec is not None and isinstance(o, dec.Decimal):
            if o.is_nan():
                return float("nan")
            raws.append(str(o))
            return mark + str(len(raws) - 1)
        if isinstance(o, bytes):
            return str(o, "utf-8")
        asdict = getattr(o, "_asdict", None)
        if asdict is not None and callable(asdict):
            d = asdict()
            if not isinstance(d, dict):
                raise TypeError("_asdict() must return a dict, not %s" % (type(d).__name__,))
            return d
        raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)

    markers = {}
    try:
        c_encode = _json.make_encoder(
            markers, default, encode_str, None, ": ", ", ", False, False, True
        )
    except Exception:  # an interpreter whose _json differs: take the pure-Python encoder
        import json

        py_encoder = json.JSONEncoder(ensure_ascii=_ENSURE_ASCII, allow_nan=True)
        py_encoder.default = default

        def c_encode(o, _level):
            return py_encoder.iterencode(o, _one_shot=True)

    def to_json(o):
        try:
            s = "".join(c_encode(o, 0))
        except BaseException:
            markers.clear()
            del raws[:]
            raise
        if raws:
            parts = s.split(mark_encoded)
            out = [parts[0]]
            for p in parts[1:]:
                end = p.index('"')
                out.append(raws[int(p[:end])])
                out.append(p[end + 1:])
            del raws[:]
            s = "".join(out)
        return s

    class _Ctx(object):
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = {
            "-Infinity": float("-inf"),
            "Infinity": float("inf"),
            "NaN": float("nan"),
        }.__getitem__
        memo = {}

    try:
        scan = _json.make_scanner(_Ctx())
    except Exception:
        scan = None

    def from_json(s):
        # simplejson (the official decoder) skips a leading BOM.
        if s[:1] == "\ufeff":
            s = s[1:]
        if scan is not None:
            n = len(s)
            i = 0
            while i < n and s[i] in " \t\n\r":
                i += 1
            try:
                obj, end = scan(s, i)
            except (StopIteration, ValueError):
                pass
            else:
                while end < n and s[end] in " \t\n\r":
                    end += 1
                if end == n:
                    return obj
        import json  # the error path: let the standard decoder word the message

        return json.loads(s)

    return to_json, from_json


to_json, _from_json = _make_json()


# --------------------------------------------------------------------------------------
# Errors, formatted and reported as awslambdaric does.


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def _make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """(filename, lineno, name, line) of the traceback, starting at the first frame that is
    not in the runtime's own bootstrap.py (all of them if every frame is)."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i in range(len(frames)):
        if "/bootstrap.py" not in frames[i][0]:
            return frames[i:]
    return frames


def _format_frames(frames):
    import traceback

    return traceback.format_list(frames)


def _fault_from_exc_info(exc_info):
    etype, value, tb = exc_info
    frames = _user_frames(tb)
    return _make_error(str(value), etype.__name__, _format_frames(frames)), frames


def _xray_fault(ex_type, ex_msg, frames):
    stack = []
    files = set()
    for filename, lineno, name, _line in frames:
        stack.append({"label": name, "path": filename, "line": lineno})
        files.add(filename)
    return {
        "working_directory": os.getcwd(),
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": list(files),
    }


def _indent_nbsp(line):
    n = len(line) - len(line.lstrip(" "))
    return _ERROR_LOG_IDENT * n + line[n:]


def _log_error(error_result):
    if _JSON_LOGS:
        record = {
            "timestamp": _strftime(_TIMESTAMP_FORMAT, _gmtime(_time())),
            "log_level": "ERROR",
        }
        record.update(error_result)
        if _LOG_FD is not None:
            _write_frame(to_json(record), _frame_type(40, True))
        else:
            _sink_write(to_json(record) + "\n")
        return
    description = "[ERROR]"
    etype = error_result.get("errorType")
    if etype:
        description += " " + etype
    emsg = error_result.get("errorMessage")
    if emsg:
        if etype:
            description += ":"
        description += " " + emsg
    lines = [description]
    stack = error_result.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent_nbsp(line) for line in element.splitlines())
    if _LOG_FD is not None:
        _write_frame("\n".join(lines), _frame_type(40, False))
    else:
        _sink_write(_ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# --------------------------------------------------------------------------------------
# Logging: the official handler goes on the root logger as soon as `logging` exists.


def _setup_logging(logging):
    logging.Formatter.converter = _gmtime
    logger = logging.getLogger()

    class LambdaLoggerHandler(logging.Handler):
        def __init__(self):
            logging.Handler.__init__(self)
            self.log_sink = _LOG_SINK

        def emit(self, record):
            self.log_sink.log(self.format(record))

    class LambdaLoggerHandlerWithFrameType(LambdaLoggerHandler):
        # Each record's frame says its level (and, with JSON logs, its format).
        def emit(self, record):
            msg = self.format(record)
            level = min(50, max(0, record.levelno)) // 10 * 10
            self.log_sink.log(msg, _frame_type(level, _JSON_LOGS))

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
            record.tenant_id = _GLOBAL_TENANT_ID
            return True

    if _JSON_LOGS or _LOG_LEVEL:
        handler = LambdaLoggerHandlerWithFrameType()
    else:
        handler = LambdaLoggerHandler()
    if _JSON_LOGS:
        handler.setFormatter(_json_formatter(logging))
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    if _LOG_LEVEL in logging._nameToLevel:
        logger.setLevel(_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)


def _log_preview_runtime_warning():
    if _EXEC_ENV == "AWS_Lambda_python3.15" and not _ENV.get("LAMBDA_DISABLE_PREVIEW_WARN", ""):
        region = _ENV.get("AWS_REGION", "")
        host = "docs.amazonaws.cn" if region.startswith("cn-") else "docs.aws.amazon.com"
        _logging_warning(
            "LAMBDA_WARNING: This is a preview runtime version and should not be used for "
            "production workloads. For further information and to provide feedback, see "
            "https://%s/lambda/latest/dg/lambda-runtimes.html\r" % host
        )


_RESERVED_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
    "tenant_id", "_frame_type",
))


def _json_formatter(logging):
    import json
    import traceback

    encode = json.JSONEncoder(ensure_ascii=False).encode

    class JsonFormatter(logging.Formatter):
        def __init__(self):
            super().__init__(datefmt=_TIMESTAMP_FORMAT)

        def format(self, record):
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": (
                    "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
                    if exc_info else None
                ),
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            result.update(
                (k, v) for k, v in record.__dict__.items()
                if k not in _RESERVED_FIELDS and k not in result
            )
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


class _LogSink(object):
    def log(self, msg, frame_type=None):
        if _LOG_FD is not None:
            _write_frame(msg, frame_type or _TEXT_FRAME)
        else:
            sys.stdout.write(msg)


_LOG_SINK = _LogSink()


class _LoggingImportHook(object):
    """A meta-path finder that lets `logging` load normally, then installs the Lambda handler
    before the importer gets the module, so no user code can observe logging without it."""

    busy = False

    def find_spec(self, name, path=None, target=None):
        if name != "logging" or self.busy:
            return None
        self.busy = True
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(name, path, target)
                if spec is not None:
                    break
        finally:
            self.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _LoggingLoader(spec.loader, self)
        return spec


class _LoggingLoader(object):
    def __init__(self, loader, hook):
        self.loader = loader
        self.hook = hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        try:
            sys.meta_path.remove(self.hook)
        except ValueError:
            pass
        self.loader.exec_module(module)
        _setup_logging(module)


def _install_logging():
    if "logging" in sys.modules:
        _setup_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


def _logging_warning(msg):
    import logging

    logging.warning(msg)


# --------------------------------------------------------------------------------------
# The context object, with the fields and types of awslambdaric's LambdaContext.


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        env = _ENV
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)

        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(_time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        logging = sys.modules.get("logging")
        if logging is None:
            # On AWS the runtime's handler is on the root logger from the start, so this
            # writes through its log sink (one framed record) even if user code never imports
            # `logging`; here that handler exists only once something has imported it.
            _LOG_SINK.log(str(msg))
            return
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "%s([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,"
            "client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.__class__.__name__, self.aws_request_id, self.log_group_name,
                self.log_stream_name, self.function_name, self.memory_limit_in_mb,
                self.function_version, self.invoked_function_arn, self.client_context,
                self.identity, self.tenant_id,
            )
        )


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "%s([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.__class__.__name__, self.cognito_identity_id, self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return (
            "%s([installation_id=%s,app_title=%s,app_version_name=%s,app_version_code=%s,"
            "app_package_name=%s])"
            % (
                self.__class__.__name__, self.installation_id, self.app_title,
                self.app_version_name, self.app_version_code, self.app_package_name,
            )
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "%s([custom=%s,env=%s,client=%s])" % (
            self.__class__.__name__, self.custom, self.env, self.client,
        )


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field, None))
    return obj


# --------------------------------------------------------------------------------------
# A small HTTP/1.1 client on one kept-alive connection (http.client costs ~50 ms to import
# on a cold interpreter and a new connection per call in the official client).

import _socket  # noqa: E402  (a built-in C module: no import cost worth the name)


class _ConnectionLost(Exception):
    """The server closed a kept-alive connection before answering: safe to retry."""


class RuntimeAPIUnreachable(Exception):
    pass


class _HttpConnection(object):
    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("AWS_LAMBDA_RUNTIME_API must be host:port, got %r" % address)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.address = address
        self.host = host
        self.port = int(port)
        self.sock = None
        self.buf = bytearray()
        self.reused = False

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = bytearray()
        self.reused = False

    def _connect(self):
        error = None
        infos = None
        for family in (_socket.AF_INET, _socket.AF_INET6):
            try:
                _socket.inet_pton(family, self.host)
            except OSError:
                continue
            # An address literal needs no resolver (getaddrinfo on a str host would import
            # the idna codec, and with it `re`: ~9 ms on a cold interpreter).
            infos = [(family, _socket.SOCK_STREAM, 0, "", (self.host, self.port))]
            break
        if infos is None:
            try:
                host = self.host
                if host.isascii():
                    host = host.encode("ascii")
                infos = _socket.getaddrinfo(host, self.port, 0, _socket.SOCK_STREAM)
            except OSError as e:
                raise RuntimeAPIUnreachable(str(e))
        for family, socktype, proto, _name, addr in infos:
            s = _socket.socket(family, socktype, proto)
            s.settimeout(None)  # user code may have set a default timeout; /next blocks forever
            try:
                s.connect(addr)
            except OSError as e:
                s.close()
                error = e
                continue
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self.sock = s
            self.buf = bytearray()
            self.reused = False
            return
        raise RuntimeAPIUnreachable(str(error) if error else "no address for " + self.host)

    def request(self, head, body=None, then=None):
        """Send one request (`head` is the request line and headers, CRLF-terminated);
        return (status, headers with lower-case names, body as a bytearray).

        `then`, a body-less request, is pipelined behind it: written in the same send, its
        answer is left on the connection for read_pipelined(), which must be called next."""
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            reused = self.reused
            try:
                if body is None:
                    self.sock.sendall(head if then is None else head + then)
                elif len(body) < 65536:
                    self.sock.sendall(head + body if then is None else head + body + then)
                elif then is None:
                    self.sock.sendall(head)
                    self.sock.sendall(body)
                else:
                    self._send_parts((head, body, then))
                response = self._read_response()
            except (_ConnectionLost, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if reused and attempt == 0:
                    continue
                raise RuntimeAPIUnreachable("connection closed by the server (%s)" % (
                    e.__class__.__name__,))
            except BaseException:
                self.close()
                raise
            return response
        raise AssertionError("unreachable")

    def read_pipelined(self, head):
        """The answer to the request pipelined by request(..., then=head). If the connection
        ended before any byte of that answer (closed after the first one, or broken), the
        request is sent again on a new connection, as an unanswered request always was."""
        if self.sock is not None:
            try:
                return self._read_response()
            except (_ConnectionLost, BrokenPipeError, ConnectionResetError):
                self.close()
            except BaseException:
                self.close()
                raise
        return self.request(head)

    def _send_parts(self, parts):
        """All of parts in as few system calls as the kernel allows (one, usually): a large
        body is not copied to join it to its neighbours."""
        views = [memoryview(p) for p in parts]
        sendmsg = self.sock.sendmsg
        while views:
            sent = sendmsg(views)
            while sent:
                first = len(views[0])
                if sent >= first:
                    sent -= first
                    del views[0]
                else:
                    views[0] = views[0][sent:]
                    sent = 0
            while views and not len(views[0]):
                del views[0]

    def _fill(self, n):
        """Make self.buf hold at least n bytes."""
        buf = self.buf
        recv = self.sock.recv
        while len(buf) < n:
            chunk = recv(max(65536, n - len(buf)))
            if not chunk:
                raise RuntimeAPIUnreachable("connection closed in the middle of a response")
            buf += chunk

    def _line(self):
        buf = self.buf
        while True:
            i = buf.find(b"\r\n")
            if i >= 0:
                line = bytes(buf[:i])
                del buf[: i + 2]
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeAPIUnreachable("connection closed in the middle of a response")
            buf += chunk

    def _read_response(self):
        sock = self.sock
        while True:
            buf = self.buf
            start = 0
            while True:
                i = buf.find(b"\r\n\r\n", start)
                if i >= 0:
                    break
                start = max(0, len(buf) - 3)
                chunk = sock.recv(65536)
                if not chunk:
                    if buf:
                        raise RuntimeAPIUnreachable("connection closed in a response's headers")
                    raise _ConnectionLost()
                buf += chunk
            lines = buf[:i].decode("latin-1").split("\r\n")
            del buf[: i + 4]
            status_line = lines[0].split(" ", 2)
            version = status_line[0]
            status = int(status_line[1])
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # interim response
            break

        to_eof = False
        te = headers.get("transfer-encoding")
        if te is not None and "chunked" in te.lower():
            body = bytearray()
            while True:
                size_line = self._line()
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self._line():  # trailers, up to the empty line
                        pass
                    break
                self._fill(size + 2)
                body += buf[:size]
                del buf[: size + 2]
        elif "content-length" in headers:
            n = int(headers["content-length"])
            have = len(buf)
            if have < n:
                # Receive straight into a buffer of the final size (events reach 6 MB).
                body = bytearray(n)
                body[:have] = buf
                view = memoryview(body)
                recv_into = sock.recv_into
                while have < n:
                    got = recv_into(view[have:], n - have)
                    if not got:
                        raise RuntimeAPIUnreachable("connection closed in the middle of a body")
                    have += got
                view.release()
                self.buf = bytearray()
            elif have == n:
                body = buf
                self.buf = bytearray()
            else:
                body = buf[:n]
                del buf[:n]
        elif status == 204 or status == 304:
            body = bytearray()
        else:
            to_eof = True
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            body = buf
            self.buf = bytearray()

        connection = headers.get("connection", "").lower()
        if to_eof or connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
            self.close()
        else:
            self.reused = True
        return status, headers, body


# --------------------------------------------------------------------------------------
# The Runtime API calls.


# The Lambda limit on a buffered response or error body (6 MB + 100 bytes): the Runtime API
# answers a larger one 413. The Runtime API's limit on a request's headers is 64 KiB.
_MAX_PAYLOAD = 6 * 1024 * 1024 + 100
_PIPELINE_MAX_HEAD = 60 * 1024


class _RuntimeClient(object):
    def __init__(self, address):
        self.conn = _HttpConnection(address)
        vi = sys.version_info
        user_agent = "aws-lambda-python/%d.%d.%d-sluice" % (vi[0], vi[1], vi[2])
        self.common = (
            "Host: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n" % (address, user_agent)
        ).encode("latin-1")
        self.next_request = (
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n" + self.common + b"\r\n"
        )

    def _call(self, what, head, body=None, then=None):
        try:
            return self.conn.request(head, body, then)
        except RuntimeAPIUnreachable as e:
            _fatal("cannot reach the Lambda Runtime API at %s (%s): %s" % (
                self.conn.address, what, e))
        except OSError as e:
            _fatal("cannot reach the Lambda Runtime API at %s (%s): %s" % (
                self.conn.address, what, e))

    def wait_next_invocation(self):
        status, headers, body = self._call(
            "GET /2018-06-01/runtime/invocation/next", self.next_request
        )
        return self._next_invocation(status, headers, body)

    def _pipelined_next_invocation(self):
        try:
            status, headers, body = self.conn.read_pipelined(self.next_request)
        except (RuntimeAPIUnreachable, OSError) as e:
            _fatal("cannot reach the Lambda Runtime API at %s (%s): %s" % (
                self.conn.address, "GET /2018-06-01/runtime/invocation/next", e))
        return self._next_invocation(status, headers, body)

    @staticmethod
    def _next_invocation(status, headers, body):
        if status != 200 or "lambda-runtime-aws-request-id" not in headers:
            _fatal_runtime("Failed to get next", status, body)
        return headers, body

    def _post_then_next(self, path, content_type, payload, extra, failure):
        """POST a result, then GET the next invocation: (headers, body) of the next event.

        The GET is pipelined behind the POST (one send; the Runtime API answers both in order,
        the POST's 202 together with the next event). A POST that may be refused keeps a round
        trip of its own, because a refusal ends the process (as with the official client) and
        nothing may have asked for another event by then: one whose payload is over the Lambda
        limit (413), or whose headers are over the Runtime API's limit (a huge X-Ray cause)."""
        head = b"".join((
            b"POST ", path, b" HTTP/1.1\r\n", self.common,
            b"content-type: ", content_type, b"\r\n", extra,
            b"content-length: ", str(len(payload)).encode(), b"\r\n\r\n",
        ))
        pipeline = len(payload) <= _MAX_PAYLOAD and len(head) <= _PIPELINE_MAX_HEAD
        status, _headers, body = self._call(
            "POST " + path.decode("latin-1"), head, payload, self.next_request if pipeline else None
        )
        if not 200 <= status < 300:
            _fatal_runtime(failure, status, body)
        if pipeline:
            return self._pipelined_next_invocation()
        return self.wait_next_invocation()

    def post_invocation_result(self, invoke_id, payload, content_type):
        """POST the handler's result; returns the next invocation (headers, body)."""
        return self._post_then_next(
            b"/2018-06-01/runtime/invocation/" + invoke_id.encode("latin-1") + b"/response",
            content_type, payload, b"", "Failed to post invocation response",
        )

    def post_invocation_error(self, invoke_id, error_json, xray_json):
        """POST the handler's error; returns the next invocation (headers, body)."""
        payload = error_json.encode("utf-8")
        xray = xray_json.encode("utf-8")
        extra = b""
        if xray and len(xray) < 1024 * 1024:
            extra = b"lambda-runtime-function-xray-error-cause: " + xray + b"\r\n"
        return self._post_then_next(
            b"/2018-06-01/runtime/invocation/" + invoke_id.encode("latin-1") + b"/error",
            b"application/json", payload, extra, "Failed to post invocation error",
        )

    def post_init_error(self, error_result):
        payload = to_json(error_result).encode("utf-8")
        head = b"".join((
            b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n", self.common,
            b"Lambda-Runtime-Function-Error-Type: ",
            error_result["errorType"].encode("utf-8"), b"\r\n",
            b"Content-Length: ", str(len(payload)).encode(), b"\r\n\r\n",
        ))
        status, _headers, body = self._call("POST /2018-06-01/runtime/init/error", head, payload)
        if status != 202:
            _fatal_runtime("Request to Lambda Runtime '/2018-06-01/runtime/init/error' endpoint "
                           "failed", status, body)


def _fatal(message):
    sys.stderr.write("sluice python bootstrap: %s\n" % message)
    raise SystemExit(1)


def _fatal_runtime(message, status, body):
    # The official client raises RuntimeError here, which ends the runtime process.
    text = bytes(body[:1000]).decode("utf-8", "replace")
    _fatal("%s: HTTP %s from the Runtime API: %s" % (message, status, text))


# --------------------------------------------------------------------------------------
# Init and the invocation loop.


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        import importlib

        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )
    try:
        return getattr(m, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
            None,
        )


def _parse_json_header(value, name):
    try:
        return _from_json(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
            None,
        )


def _handle_event(client, request_handler, headers, body):
    global _GLOBAL_AWS_REQUEST_ID, _GLOBAL_TENANT_ID

    get = headers.get
    invoke_id = get("lambda-runtime-aws-request-id")
    tenant_id = get("lambda-runtime-aws-tenant-id") or None
    _GLOBAL_AWS_REQUEST_ID = invoke_id
    _GLOBAL_TENANT_ID = tenant_id

    trace_id = get("lambda-runtime-trace-id")
    if trace_id:
        _ENV["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in _ENV:
        del _ENV["_X_AMZN_TRACE_ID"]

    error_result = None
    try:
        client_context = get("lambda-runtime-client-context")
        client_context = (
            _parse_json_header(client_context, "Client Context") if client_context else None
        )
        cognito = get("lambda-runtime-cognito-identity")
        cognito = _parse_json_header(cognito, "Cognito Identity") if cognito else None
        deadline = get("lambda-runtime-deadline-ms")
        context = LambdaContext(
            invoke_id,
            client_context,
            cognito,
            int(deadline) if deadline else 0,
            get("lambda-runtime-invoked-function-arn", ""),
            tenant_id,
        )
        if get("content-type") == "application/json":
            try:
                event = _from_json(body.decode("utf-8"))
            except Exception as e:
                raise FaultException(
                    FaultException.UNMARSHAL_ERROR,
                    "Unable to unmarshal input: {}".format(str(e)),
                    None,
                )
        else:
            event = bytes(body)

        response = request_handler(event, context)

        if isinstance(response, bytes):
            result, content_type = response, b"application/unknown"
        else:
            try:
                result = to_json(response)
            except Exception as e:
                raise FaultException(
                    FaultException.MARSHAL_ERROR,
                    "Unable to marshal response: {}".format(str(e)),
                    None,
                )
            content_type = b"application/json"
    except FaultException as e:
        xray = _xray_fault("LambdaValidationError", e.msg, [])
        error_result = _make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        frames = _user_frames(tb)
        xray = _xray_fault(etype.__name__, str(value), frames)
        error_result = _make_error(str(value), etype.__name__, _format_frames(frames), invoke_id)
        del tb

    if error_result is not None:
        _log_error(error_result)
        return client.post_invocation_error(invoke_id, to_json(error_result), to_json(xray))
    if not isinstance(result, bytes):
        result = result.encode("utf-8")
    return client.post_invocation_result(invoke_id, result, content_type)


def main():
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)

    if not _RUNTIME_API:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
    try:
        client = _RuntimeClient(_RUNTIME_API)
    except ValueError as e:
        _fatal(str(e))

    error_result = None
    try:
        _install_logging()
        _log_preview_runtime_warning()
        request_handler = _get_handler(_HANDLER)
    except FaultException as e:
        error_result = _make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error_result = _fault_from_exc_info(sys.exc_info())[0]

    if error_result is not None:
        _logging_warning(_UNHANDLED_WARNING)
        _log_error(error_result)
        client.post_init_error(error_result)
        sys.exit(1)

    # Each answer is posted with the request for the next event behind it (pipelined), so
    # _handle_event returns the next event.
    headers, body = client.wait_next_invocation()
    while True:
        headers, body = _handle_event(client, request_handler, headers, body)

