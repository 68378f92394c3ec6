'use strict';
// sluice's Node.js runtime bootstrap: the client side of the Lambda Runtime API for the
// nodejs18.x/20.x/22.x runtimes. Launched as `node bootstrap.js` with cwd = the function's code
// and the environment AWS sets (see README.md). Behaviour seen by handler code and by the
// invoker follows AWS's Node.js runtime interface client (aws-lambda-nodejs-runtime-interface-client
// 3.x, the code inside the managed nodejs images); the implementation is sluice's own.
//
// Kept in one CommonJS file on purpose: a CommonJS entry starts ~5 ms sooner than an ES module
// entry, and every extra file costs a stat, a read and a compile on every cold start. Code only
// needed for response streaming (streaming.js) or for ES modules from layers (esm-hooks.mjs) is
// loaded on demand.

const path = require('node:path');
const fs = require('node:fs');
const util = require('node:util');
const net = require('node:net');

// AWS's runtime starts from an ES module, /var/runtime/index.mjs, so user code finds no
// require.main and that file in process.argv[1] (code relying on require.main.filename fails on
// Lambda). This CommonJS entry gives the same to every module loaded after it.
process.mainModule = undefined;
process.argv[1] = path.join(__dirname, 'index.mjs');

// Private to the bootstrap: a directory standing in for /opt (merged layers). User code must not
// see it, as on AWS where nothing but /opt itself tells where layers are.
const OPT_DIR = process.env._SLUICE_OPT_DIR;
delete process.env._SLUICE_OPT_DIR;

const NO_OP = () => {};

// ---------------------------------------------------------------------------------------------
// Errors: the shapes the official runtime posts to the Runtime API and prints in its logs.

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
// The name lives on the prototype (not as an own property), so JSON dumps of these errors do not
// repeat it and stack headers read `Runtime.ImportModuleError: ...`.
for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function looksLikeError(value) {
  return (
    value &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string' &&
    value.name &&
    value.message &&
    value.stack
  );
}

function intoError(value) {
  return value instanceof Error ? value : new Error(value);
}

// Body of /invocation/{id}/error, /init/error and of the streaming error trailer.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// Errors hide name/message/stack from JSON.stringify; the text log shows them, plus `code` and
// the error's own enumerable properties, with the stack as an array of lines.
function errorWithEnumerableProperties(value) {
  if (!(value instanceof Error)) return value;
  const out = Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code },
    value,
  );
  if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
  return out;
}

// The text logs put a tab before the JSON dump of an error (`Invoke Error \t{...}`).
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_key, value) => errorWithEnumerableProperties(value));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// Value of the Lambda-Runtime-Function-XRay-Error-Cause header sent with invocation errors.
function xrayErrorCause(err) {
  try {
    const frames = [];
    if (err.stack) {
      const lines = err.stack.replace(/\x7F/g, '%7F').split('\n');
      lines.shift();
      for (const raw of lines) {
        let line = raw.trim().replace(/\(|\)/g, '');
        line = line.substring(line.indexOf(' ') + 1);
        const lastSpace = line.lastIndexOf(' ');
        const label = lastSpace >= 0 ? line.slice(0, lastSpace) : null;
        const location = (label ? line.slice(lastSpace + 1) : line).split(':');
        frames.push({ path: location[0], line: parseInt(location[1]), label: label || 'anonymous' });
      }
    }
    return JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [
        {
          type: err.name?.replace(/\x7F/g, '%7F'),
          message: err.message?.replace(/\x7F/g, '%7F'),
          stack: frames,
        },
      ],
      paths: Array.from(new Set(frames.map((f) => f.path))),
    });
  } catch (_) {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Console patch: every console method writes one record
//   <ISO-8601 ms Z>\t<request id>\t<LEVEL>\t<util.format(...)>
// (newlines inside a record become \r so that one record stays one line on stdout), or a JSON
// record with AWS_LAMBDA_LOG_FORMAT=JSON; AWS_LAMBDA_LOG_LEVEL drops the lower levels.

// Globals under registered symbols, as the official runtime keeps them (libraries read them).
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');
const BEFORE_EXIT = Symbol.for('aws.lambda.beforeExit');

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1, tlvMask: 0b00100 },
  DEBUG: { name: 'DEBUG', priority: 2, tlvMask: 0b01000 },
  INFO: { name: 'INFO', priority: 3, tlvMask: 0b01100 },
  WARN: { name: 'WARN', priority: 4, tlvMask: 0b10000 },
  ERROR: { name: 'ERROR', priority: 5, tlvMask: 0b10100 },
  FATAL: { name: 'FATAL', priority: 6, tlvMask: 0b11000 },
});

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJsonRecord(requestId, timestamp, level, tenantId, messageParams) {
  const record = { timestamp, level: level.name, requestId };
  if (tenantId !== undefined && tenantId !== null) record.tenantId = tenantId;
  if (messageParams.length === 1) {
    record.message = messageParams[0];
    try {
      return JSON.stringify(record, jsonErrorReplacer);
    } catch (_) {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...messageParams);
  for (const param of messageParams) {
    if (param instanceof Error) {
      record.errorType = param?.constructor?.name ?? 'UnknownError';
      record.errorMessage = param.message;
      record.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(record);
}

function textToStdout(level, message, ...params) {
  const line = `${new Date().toISOString()}\t${global[REQUEST_ID]}\t${level.name}\t${util.format(
    message,
    ...params,
  )}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function jsonToStdout(level, message, ...params) {
  const line = formatJsonRecord(
    global[REQUEST_ID],
    new Date().toISOString(),
    level,
    global[TENANT_ID],
    [message, ...params],
  );
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

// The framed telemetry log contract (used when the platform hands over _LAMBDA_TELEMETRY_LOG_FD):
// 4 bytes type (0xa55a0003 text / 0xa55a0002 JSON, OR-ed with the level mask), 4 bytes length,
// 8 bytes timestamp in microseconds, then the message; big-endian. Newlines are kept.
function framedWriter(fd, json) {
  const header = Buffer.alloc(16);
  return (level, message, ...params) => {
    const now = new Date();
    const text = json
      ? formatJsonRecord(global[REQUEST_ID], now.toISOString(), level, global[TENANT_ID], [
          message,
          ...params,
        ])
      : `${now.toISOString()}\t${global[REQUEST_ID]}\t${level.name}\t${util.format(message, ...params)}\n`;
    const bytes = Buffer.from(text, 'utf8');
    header.writeUInt32BE(((json ? 0xa55a0002 : 0xa55a0003) | level.tlvMask) >>> 0, 0);
    header.writeInt32BE(bytes.length, 4);
    header.writeBigInt64BE(BigInt(now.valueOf()) * 1000n, 8);
    fs.writeSync(fd, header);
    fs.writeSync(fd, bytes);
  };
}

// Error reports of the runtime itself ("Invoke Error", "Uncaught Exception", ...). They go
// through console.error at call time, as the official runtime does, so level filtering applies.
const structuredConsole = { logError: NO_OP };

// Set once an uncaught exception or unhandled rejection has been reported: the process exits as
// soon as that post is answered. The official client's post is a blocking call followed by the
// exit, so nothing else of the process runs meanwhile: no handler of an event already fetched
// starts, and no other answer is posted. Here the post is asynchronous, and this keeps it so.
let dying = false;
const NEVER = new Promise(NO_OP);

function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  let write;
  if (process.env._LAMBDA_TELEMETRY_LOG_FD != null) {
    const fd = parseInt(process.env._LAMBDA_TELEMETRY_LOG_FD);
    delete process.env._LAMBDA_TELEMETRY_LOG_FD;
    write = framedWriter(fd, json);
  } else {
    write = json ? jsonToStdout : textToStdout;
  }
  const threshold = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const method = (level) =>
    level.priority >= threshold.priority ? (msg, ...params) => write(level, msg, ...params) : NO_OP;
  console.trace = method(LEVELS.TRACE);
  console.debug = method(LEVELS.DEBUG);
  console.info = method(LEVELS.INFO);
  console.log = console.info;
  console.warn = method(LEVELS.WARN);
  console.error = method(LEVELS.ERROR);
  console.fatal = (msg, ...params) => write(LEVELS.FATAL, msg, ...params);

  structuredConsole.logError = json
    ? (_message, err) => console.error(intoError(err))
    : (message, err) => console.error(message, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------------------------
// Runtime API client: a minimal HTTP/1.1 client over one kept-alive TCP connection. Node's http
// module costs ~2 ms to load and more per request; this needs only net. The socket is unref'ed
// whenever no request is in flight, so that it never keeps the event loop alive: the
// callbackWaitsForEmptyEventLoop semantics rest on 'beforeExit' firing when user work is done.
//
// Requests can be pipelined: an invocation's response (or error) is written together with the
// GET /next that the runtime sends right after it, and the answers are read in order from the
// connection's byte stream (the Runtime API sends the POST's 202 together with the next event).

const API_PREFIX = '/2018-06-01/runtime';
const MAX_HEAD_BYTES = 1 << 20;
const EMPTY = Buffer.alloc(0);

class RuntimeApiUnreachable extends Error {}

// A pipelined request whose connection ended before any byte of its answer: it can be sent again.
class Unanswered extends Error {}

const resumeOnNextTick = (resolve) => process.nextTick(resolve);

function headerSafe(value) {
  return String(value).replace(/[\r\n]/g, ' ');
}

class Connection {
  constructor(client) {
    this.client = client;
    this.closed = false;
    this.reused = false;
    this.queue = []; // exchanges sent and not yet answered, in order
    this.head = null; // bytes received before the end of the current response head
    const socket = net.connect(client.port, client.host);
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('end', () => this.onClosed(null));
    socket.on('error', (err) => this.onClosed(err));
    socket.on('close', () => this.onClosed(null));
    this.socket = socket;
  }

  // Writes the requests of `exchanges` in one write; their answers come back in this order.
  send(exchanges) {
    const socket = this.socket;
    socket.ref();
    let small = true;
    let text = '';
    for (const ex of exchanges) {
      this.queue.push(ex);
      if (ex.body !== null && ex.body.length >= 65536) small = false;
    }
    if (small) {
      // One small write beats writev's bookkeeping.
      for (const ex of exchanges) text += ex.body === null ? ex.head : ex.head + ex.body;
      socket.write(text);
    } else {
      socket.cork();
      for (const ex of exchanges) {
        socket.write(ex.head);
        if (ex.body !== null) socket.write(ex.body);
      }
      socket.uncork();
    }
  }

  destroy() {
    this.closed = true;
    this.socket.destroy();
  }

  // Bytes are parsed for the exchange at the head of the queue; what follows the end of its
  // response belongs to the next one.
  onData(chunk) {
    for (;;) {
      const ex = this.queue.length > 0 ? this.queue[0] : null;
      if (ex === null) {
        if (chunk.length > 0) {
          // Nothing was asked: the server is out of step with us; start afresh next time.
          this.client.forget(this);
          this.destroy();
        }
        return;
      }
      while (ex.status === 0) {
        if (chunk.length === 0) return;
        ex.received = true;
        const buf = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (buf.length > MAX_HEAD_BYTES) return this.fail(new Error('response head too large'));
          this.head = buf;
          return;
        }
        this.head = null;
        this.parseHead(ex, buf.toString('utf8', 0, end));
        chunk = buf.subarray(end + 4);
        if (ex.status >= 100 && ex.status < 200) {
          ex.status = 0; // interim response: the real one follows
          ex.headers = null;
        } else if (ex.status === 0) {
          return this.fail(new Error('malformed response from the Runtime API'));
        }
      }
      if (ex.remaining !== 0) {
        if (chunk.length === 0) return;
        chunk = this.onBody(ex, chunk);
        if (chunk === null || ex.remaining !== 0) return;
      }
      if (!this.complete(ex)) return;
    }
  }

  parseHead(ex, text) {
    const lines = text.split('\r\n');
    const status = parseInt(lines[0].slice(9, 12), 10);
    ex.status = status > 0 ? status : 0;
    const headers = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    ex.headers = headers;
    ex.keepAlive = !/close/i.test(headers.connection || '');
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      ex.remaining = 0;
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      ex.remaining = -1;
      ex.chunked = { state: 0, left: 0, pending: null };
    } else if (headers['content-length'] !== undefined) {
      ex.remaining = parseInt(headers['content-length'], 10) || 0;
    } else {
      ex.remaining = -2; // until the server closes
      ex.keepAlive = false;
    }
  }

  // Consumes body bytes; returns the bytes past the end of the body (EMPTY if none or if the
  // body goes on), or null after a failure.
  onBody(ex, chunk) {
    if (ex.remaining > 0) {
      if (chunk.length >= ex.remaining) {
        ex.parts.push(chunk.subarray(0, ex.remaining));
        const rest = chunk.subarray(ex.remaining);
        ex.remaining = 0;
        return rest;
      }
      ex.parts.push(chunk);
      ex.remaining -= chunk.length;
      return EMPTY;
    }
    if (ex.remaining === -1) return this.onChunked(ex, chunk);
    ex.parts.push(chunk); // -2: until the server closes
    return EMPTY;
  }

  // Chunked response bodies: states 0 = size line, 1 = data, 2 = CRLF after data, 3 = trailers.
  onChunked(ex, chunk) {
    const c = ex.chunked;
    let buf = c.pending === null ? chunk : Buffer.concat([c.pending, chunk]);
    c.pending = null;
    for (;;) {
      if (c.state === 1) {
        if (buf.length === 0) return EMPTY;
        const take = Math.min(c.left, buf.length);
        ex.parts.push(buf.subarray(0, take));
        buf = buf.subarray(take);
        c.left -= take;
        if (c.left === 0) c.state = 2;
        continue;
      }
      if (c.state === 2) {
        if (buf.length < 2) break;
        buf = buf.subarray(2);
        c.state = 0;
        continue;
      }
      const eol = buf.indexOf('\r\n');
      if (eol === -1) break;
      if (c.state === 0) {
        const size = parseInt(buf.toString('latin1', 0, eol).split(';')[0], 16);
        buf = buf.subarray(eol + 2);
        if (!(size >= 0)) {
          this.fail(new Error('malformed chunked response'));
          return null;
        }
        if (size === 0) c.state = 3;
        else {
          c.state = 1;
          c.left = size;
        }
        continue;
      }
      // state 3: trailer lines until an empty one
      buf = buf.subarray(eol + 2);
      if (eol === 0) {
        ex.remaining = 0;
        return buf;
      }
    }
    if (buf.length > 0) c.pending = buf;
    return EMPTY;
  }

  // The exchange at the head of the queue has its whole answer. Returns whether the connection
  // goes on (false: it was closed, and requests still queued on it are unanswered).
  complete(ex) {
    this.queue.shift();
    const body = ex.parts.length === 1 ? ex.parts[0] : Buffer.concat(ex.parts);
    let goesOn = true;
    if (!ex.keepAlive || this.closed) {
      goesOn = false;
      this.client.forget(this);
      this.destroy();
      this.abandonQueue();
    } else if (this.queue.length === 0) {
      this.client.release(this);
    } else {
      // The request pipelined behind this one is now on a connection that served a response:
      // if the server drops it before any of the answer, it is asked again (see onClosed).
      this.reused = true;
    }
    ex.resolve({ status: ex.status, headers: ex.headers, body });
    return goesOn;
  }

  // Requests pipelined behind one whose connection ended: none of their answers came.
  abandonQueue() {
    const queue = this.queue;
    this.queue = [];
    for (const ex of queue) ex.reject(new Unanswered('connection closed before the answer'));
  }

  fail(err) {
    const ex = this.queue.shift();
    this.client.forget(this);
    this.destroy();
    this.abandonQueue();
    if (ex !== undefined) ex.reject(err);
  }

  onClosed(err) {
    if (this.closed && this.queue.length === 0) return;
    this.closed = true;
    this.client.forget(this);
    if (this.queue.length === 0) return;
    const ex = this.queue[0];
    if (ex.remaining === -2 && ex.status !== 0 && err === null) {
      this.complete(ex);
      return;
    }
    this.socket.destroy();
    const queue = this.queue;
    this.queue = [];
    // A kept-alive connection the server dropped while idle: ask again on a new one (the
    // requests pipelined behind the first go with it).
    if (!ex.received && this.reused && !ex.retried) {
      ex.retried = true;
      this.client.dispatch(queue);
      return;
    }
    queue.shift();
    for (const rest of queue) rest.reject(new Unanswered('connection closed before the answer'));
    ex.reject(
      err ||
        new Error(`the Runtime API at ${this.client.endpoint} closed the connection before answering`),
    );
  }
}

class RuntimeApiClient {
  constructor(endpoint) {
    const colon = endpoint.lastIndexOf(':');
    let host = colon > 0 ? endpoint.slice(0, colon) : endpoint;
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    this.endpoint = endpoint;
    this.host = host;
    this.port = colon > 0 ? parseInt(endpoint.slice(colon + 1), 10) : 80;
    this.idle = null;
    this.nextRequest = `GET ${API_PREFIX}/invocation/next HTTP/1.1\r\nHost: ${endpoint}\r\n\r\n`;
    this.prefetched = null; // promise of the answer to a GET /next pipelined behind a post
    this.streamAgent = null; // http.Agent of streamed responses (streaming.js)
  }

  // Opens the connection while user code loads, so the first /next finds it ready.
  preconnect() {
    if (this.idle === null) {
      this.idle = new Connection(this);
      this.idle.reused = true; // if it is stale by the time it is used, one retry is allowed
      this.idle.socket.unref();
    }
  }

  release(conn) {
    if (this.idle === null) {
      conn.reused = true;
      conn.socket.unref();
      this.idle = conn;
    } else {
      conn.destroy();
    }
  }

  forget(conn) {
    if (this.idle === conn) this.idle = null;
  }

  dispatch(exchanges) {
    let conn = this.idle;
    if (conn !== null && !conn.closed) {
      this.idle = null;
    } else {
      this.idle = null;
      conn = new Connection(this);
    }
    conn.send(exchanges);
  }

  exchange(head, body, resolve, reject) {
    return {
      head,
      body,
      resolve,
      reject,
      received: false,
      retried: false,
      status: 0,
      headers: null,
      remaining: 0,
      keepAlive: true,
      chunked: null,
      parts: [],
    };
  }

  request(head, body) {
    return new Promise((resolve, reject) => {
      this.dispatch([this.exchange(head, body, resolve, reject)]);
    });
  }

  // POSTs with the GET /next pipelined behind it; the GET's answer is kept for nextInvocation().
  requestThenNext(head, body) {
    let post, next;
    const posted = new Promise((resolve, reject) => {
      post = this.exchange(head, body, resolve, reject);
    });
    const answer = new Promise((resolve, reject) => {
      next = this.exchange(this.nextRequest, null, resolve, reject);
    });
    answer.catch(NO_OP); // awaited later, by nextInvocation(): not an unhandled rejection
    this.prefetched = answer;
    this.dispatch([post, next]);
    return posted;
  }

  post(path, body, extraHeaders, thenNext) {
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${this.endpoint}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n`;
    // Only one GET /next is pipelined at a time; a post made while one waits (a handler that
    // reports again after its invocation ended) goes alone, as before.
    if (thenNext && this.prefetched === null) return this.requestThenNext(head, body);
    return this.request(head, body);
  }

  async nextInvocation() {
    let res;
    const prefetched = this.prefetched;
    this.prefetched = null;
    try {
      if (prefetched !== null) {
        try {
          res = await prefetched;
          // Usually answered already: resume from a nextTick, as an answer that arrives from
          // the socket does, so that stack traces through the handler end the same way
          // (`at process.processTicksAndRejections`).
          await new Promise(resumeOnNextTick);
        } catch (err) {
          // Its connection ended before any of its answer: ask again, as for any request.
          if (!(err instanceof Unanswered)) throw err;
          res = await this.request(this.nextRequest, null);
        }
      } else {
        res = await this.request(this.nextRequest, null);
      }
    } catch (err) {
      throw new RuntimeApiUnreachable(
        `cannot reach the Lambda Runtime API at ${this.endpoint} (${err.message})`,
      );
    }
    if (res.status !== 200) {
      throw new RuntimeApiUnreachable(
        `GET ${API_PREFIX}/invocation/next at ${this.endpoint} answered HTTP ${res.status}: ${res.body.toString().slice(0, 500)}`,
      );
    }
    return { bodyJson: res.body.toString('utf8'), headers: res.headers };
  }

  // The official native client ignores the outcome of these posts (a 4xx, e.g. a payload over
  // 6 MB, is the platform's business); a dead Runtime API shows up at the next /next.
  // `thenNext`: the callback calls nextInvocation() (by way of setImmediate), so the GET /next
  // is written with the post (pipelined); the callback still runs once the post is answered.
  postInvocationResponse(response, id, callback, thenNext = false) {
    if (dying) return;
    const body = serializeResponse(response);
    this.post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`, body, '', thenNext).then(
      () => callback(),
      () => callback(),
    );
  }

  postInvocationError(error, id, callback, thenNext = false) {
    if (dying) return;
    const body = serializeResponse(toRapidResponse(error));
    const cause = xrayErrorCause(error);
    this.post(
      `${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      body,
      `Lambda-Runtime-Function-XRay-Error-Cause: ${headerSafe(cause)}\r\n`,
      thenNext,
    ).then(
      () => callback(),
      () => callback(),
    );
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this.post(
      `${API_PREFIX}/init/error`,
      serializeResponse(response),
      `Lambda-Runtime-Function-Error-Type: ${headerSafe(response.errorType)}\r\n`,
      false,
    ).then(
      () => callback(),
      (err) => {
        process.stderr.write(
          `sluice node bootstrap: cannot report the init error to the Lambda Runtime API at ${this.endpoint} (${err.message})\n`,
        );
        callback();
      },
    );
  }
}

function serializeResponse(body) {
  let text;
  try {
    text = JSON.stringify(body === undefined ? null : body);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
  // A function or a symbol serialises to nothing; the official native client then refuses the
  // call with this TypeError, which the invoker receives as the function's error.
  if (text === undefined) throw new TypeError('Wrong arguments');
  return text;
}

function fatal(message, code) {
  process.stderr.write(`sluice node bootstrap: ${message}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------
// Loading the handler: `_HANDLER` is `[dir/]module.export[.nested...]`; the module is tried as
// <module> (no extension, CommonJS), <module>.js (CommonJS unless the nearest package.json says
// "type": "module"), <module>.mjs, <module>.cjs, then through require.resolve from the task root.

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

class HttpResponseStream {
  // Turns a response stream into application/vnd.awslambda.http-integration-response: a JSON
  // prelude (statusCode, headers, cookies) and 8 NUL bytes before the first body byte. As on
  // AWS, the prelude goes out with the first write(): end(data) alone does not send it.
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

function installAwsLambdaGlobal() {
  const flag = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (flag === '1' || flag === 'true') return;
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

function folderSaysModule(folder) {
  // The nearest package.json decides; a node_modules folder on the way up means CommonJS.
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(
          `${pj} cannot be read, it will be ignored for ES module detection purposes.`,
          e,
        );
        return false;
      }
    }
    if (folder === '/') return false;
    folder = path.resolve(folder, '..');
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  if (!fs.existsSync(file)) return undefined;
  prepareEsmLayerResolution();
  return import(require('node:url').pathToFileURL(file).href);
}

async function requireUserModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);

  const extensionless = requireIfExists(base);
  if (extensionless) return extensionless;

  const isModule = fs.existsSync(base + '.js') && folderSaysModule(path.dirname(base + '.js'));
  if (!isModule) {
    const loaded = requireIfExists(base + '.js');
    if (loaded) return loaded;
  }

  const loaded =
    (isModule && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (loaded) return loaded;

  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  installAwsLambdaGlobal();
  let userModule;
  try {
    userModule = await requireUserModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e.code !== undefined && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }

  const handler = handlerPath.split('.').reduce((obj, key) => obj && obj[key], userModule);
  if (!handler) {
    throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handler;
}

function handlerMetadata(handler) {
  let streaming = false;
  const mode = handler[HANDLER_STREAMING];
  if (mode !== undefined && mode !== null && mode !== false) {
    if (mode !== STREAM_RESPONSE) {
      throw new MalformedStreamingHandler('Only response streaming is supported.');
    }
    streaming = STREAM_RESPONSE;
  }
  let highWaterMark;
  const hwm = handler[HANDLER_HIGHWATERMARK];
  if (hwm !== undefined && hwm !== null && hwm !== false) {
    const n = parseInt(hwm);
    highWaterMark = isNaN(n) ? undefined : n;
  }
  let isAsync = false;
  try {
    isAsync = handler.constructor?.name === 'AsyncFunction';
  } catch (_) {
    isAsync = false;
  }
  return { streaming, highWaterMark, isAsync, argsNum: handler.length };
}

// From Node.js 24 on, Lambda's runtime refuses callback-style handlers at init: three or more
// declared parameters, streaming handlers aside, async or not (errorOnDeprecatedCallback of the
// runtime client nodejs24.x uses). Its errors carry their name as an own property, so the logged
// record has a "name" key (recorded `Init Error` lines, e.g. arithmetric/aws-lambda-ses-forwarder#154).
function callbackHandlerRefused(metadata) {
  const major = parseInt(/nodejs(\d+)/.exec(process.env.AWS_EXECUTION_ENV || '')?.[1] || '0', 10);
  if (major < 24 || metadata.argsNum < 3 || metadata.streaming) return null;
  const error = new Error(
    'ERROR: AWS Lambda has removed support for callback-based function handlers starting with Node.js 24. You need to modify this function to use a supported handler signature to use Node.js 24 or later. For more information see https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.',
  );
  error.name = 'Runtime.CallbackHandlerDeprecated';
  error.stack = `${error.name}: ${error.message}\n${error.stack.split('\n').slice(1).join('\n')}`;
  return error;
}

function warnAboutCallbackHandler(metadata) {
  if (
    process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined &&
    metadata.argsNum === 3 &&
    !metadata.isAsync &&
    !metadata.streaming
  ) {
    console.warn(
      'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will need to update this function to use an async handler to use Node.js 24 or later. For more information and to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
    );
  }
}

// ES modules ignore NODE_PATH; on AWS, bare imports from ES modules still find packages of layers
// (/opt/nodejs/nodeNN/node_modules, /opt/nodejs/node_modules). Here the same is done by a resolve
// hook that retries a bare specifier from those folders. Installed only when an ES module is
// about to load and such a folder exists: on Node 20 module.register() starts a loader thread,
// which costs tens of milliseconds.
let esmLayerResolutionPrepared = false;
function prepareEsmLayerResolution() {
  if (esmLayerResolutionPrepared) return;
  esmLayerResolutionPrepared = true;
  const candidates = [];
  if (OPT_DIR) {
    const major =
      /nodejs(\d+)/.exec(process.env.AWS_EXECUTION_ENV || '')?.[1] ||
      process.versions.node.split('.')[0];
    candidates.push(path.join(OPT_DIR, 'nodejs', `node${major}`, 'node_modules'));
    candidates.push(path.join(OPT_DIR, 'nodejs', 'node_modules'));
  }
  for (const entry of (process.env.NODE_PATH || '').split(path.delimiter)) {
    if (entry && path.basename(entry) === 'node_modules') candidates.push(path.resolve(entry));
  }
  const { pathToFileURL } = require('node:url');
  const parents = [];
  for (const dir of new Set(candidates)) {
    // A parent URL inside <dir> makes the resolver look in <dir>/../node_modules, i.e. <dir>.
    if (fs.existsSync(dir)) parents.push(pathToFileURL(path.join(dir, '__sluice_layer__.mjs')).href);
  }
  if (parents.length === 0) return;
  const mod = require('node:module');
  if (typeof mod.registerHooks === 'function') {
    // Node >= 22.15: synchronous in-thread hooks, no loader thread.
    mod.registerHooks({
      resolve(specifier, context, nextResolve) {
        try {
          return nextResolve(specifier, context);
        } catch (err) {
          if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !isBareSpecifier(specifier)) throw err;
          for (const parentURL of parents) {
            try {
              return nextResolve(specifier, { ...context, parentURL });
            } catch (e) {
              if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
            }
          }
          throw err;
        }
      },
    });
  } else if (typeof mod.register === 'function') {
    mod.register(pathToFileURL(path.join(__dirname, 'esm-hooks.mjs')).href, {
      data: { parents },
    });
  }
}

function isBareSpecifier(specifier) {
  return !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z\d+.-]*:)/.test(specifier) && specifier !== '.' && specifier !== '..';
}

// ---------------------------------------------------------------------------------------------
// The invoke loop.

const beforeExitListener = {
  invoke: () => global[BEFORE_EXIT](),
  reset: () => (global[BEFORE_EXIT] = NO_OP),
  set: (listener) => (global[BEFORE_EXIT] = listener),
};

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

class InvokeContext {
  constructor(headers) {
    this.headers = headers;
  }

  get invokeId() {
    const id = this.headers['lambda-runtime-aws-request-id'];
    if (!id) require('node:assert').strict.ok(id, 'invocation id is missing or invalid');
    return id;
  }

  updateLoggingContext() {
    global[REQUEST_ID] = this.invokeId;
    global[TENANT_ID] = this.headers['lambda-runtime-aws-tenant-id'];
  }

  attachEnvironmentData(context) {
    const trace = this.headers['lambda-runtime-trace-id'];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    const headers = this.headers;
    const deadline = Number(headers['lambda-runtime-deadline-ms'] || 0);
    const env = process.env;
    return Object.assign(
      context,
      {
        functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
        functionName: env.AWS_LAMBDA_FUNCTION_NAME,
        memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
        logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      },
      {
        clientContext: parseJsonHeader(
          headers['lambda-runtime-client-context'] || undefined,
          'ClientContext',
        ),
        identity: parseJsonHeader(
          headers['lambda-runtime-cognito-identity'] || undefined,
          'CognitoIdentity',
        ),
        invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'] ?? '',
        awsRequestId: headers['lambda-runtime-aws-request-id'],
        tenantId: headers['lambda-runtime-aws-tenant-id'] || undefined,
        getRemainingTimeInMillis: function () {
          return deadline - Date.now();
        },
      },
    );
  }
}

// callback, the context's succeed/fail/done and the flag callbackWaitsForEmptyEventLoop. Only the
// first of callback/succeed/fail/done (or a settled promise) counts. With the flag true (the
// default) a callback's result is posted once the event loop is empty ('beforeExit').
//
// Every post made here is followed by scheduleNext, whose iteration starts with nextInvocation():
// the GET /next is pipelined with the post (thenNext = true).
function buildCallbackContext(client, id, scheduleNext) {
  const postError = (err, callback) => {
    structuredConsole.logError('Invoke Error', err);
    client.postInvocationError(err, id, callback, callback === scheduleNext);
  };

  let completed = false;
  const complete = (result, callback) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    client.postInvocationResponse(result, id, callback, callback === scheduleNext);
  };

  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    beforeExitListener.reset();
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExitListener.set(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (err, result) => {
    beforeExitListener.reset();
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };

  let finished = false;
  const firstCallOnly =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };

  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: firstCallOnly((result) => done(null, result)),
    fail: firstCallOnly((err) => {
      if (err === undefined || err === null) done('handled');
      else done(err, null);
    }),
    done: firstCallOnly(done),
  };
  const markCompleted = () => {
    completed = true;
  };
  return [firstCallOnly(callback), context, markCompleted];
}

function isPromise(value) {
  return value && value.then && typeof value.then === 'function';
}

let streamingSupport = null;
function loadStreamingSupport() {
  if (streamingSupport === null) {
    streamingSupport = require('./streaming.js')({
      beforeExitListener,
      structuredConsole,
      toRapidResponse,
      InvalidStreamingOperation,
    });
  }
  return streamingSupport;
}

class Runtime {
  constructor(client, handler, metadata, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.metadata = metadata;
    this.errorCallbacks = errorCallbacks;
    this.scheduleNext = () => this.scheduleIteration();
    this.handleOnce =
      metadata.streaming === STREAM_RESPONSE ? this.handleOnceStreaming : this.handleOnceNonStreaming;
  }

  scheduleIteration() {
    setImmediate(() => {
      this.handleOnce().then(NO_OP, (err) => {
        if (err instanceof RuntimeApiUnreachable) fatal(err.message, 1);
        console.log(`Unexpected Top Level Error: ${err.toString()}`);
        this.errorCallbacks.uncaughtException(err);
      });
    });
  }

  async handleOnceNonStreaming() {
    if (dying) return NEVER;
    const { bodyJson, headers } = await this.client.nextInvocation();
    if (dying) return NEVER;
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();
    const id = invokeContext.invokeId;
    const [callback, callbackContext, markCompleted] = buildCallbackContext(
      this.client,
      id,
      this.scheduleNext,
    );
    try {
      this.setErrorCallbacks(id);
      this.setDefaultExitListener(id, markCompleted, this.metadata.isAsync);
      const result = this.handler(
        JSON.parse(bodyJson),
        invokeContext.attachEnvironmentData(callbackContext),
        callback,
      );
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  async handleOnceStreaming() {
    if (dying) return NEVER;
    const { bodyJson, headers } = await this.client.nextInvocation();
    if (dying) return NEVER;
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();
    const id = invokeContext.invokeId;
    const streamingContext = loadStreamingSupport().buildStreamingContext(
      this.client,
      id,
      this.scheduleNext,
      this.metadata.highWaterMark ? { highWaterMark: this.metadata.highWaterMark } : undefined,
    );
    const { responseStream, rapidResponse, scheduleNext, fail } = streamingContext.createStream();
    delete streamingContext.createStream;
    try {
      this.setErrorCallbacks(id);
      beforeExitListener.set(() => this.scheduleIteration());
      const context = invokeContext.attachEnvironmentData(streamingContext);
      const event = JSON.parse(bodyJson);
      const handlerResult = this.handler(event, responseStream, context);
      if (!isPromise(handlerResult)) {
        fail('Streaming does not support non-async handlers.', scheduleNext);
        return;
      }
      const result = await handlerResult;
      if (typeof result !== 'undefined') console.warn('Streaming handlers ignore return values.');
      if (rapidResponse) await rapidResponse;
      if (!responseStream.writableFinished) {
        fail('Response stream is not finished.', scheduleNext);
        return;
      }
      scheduleNext();
    } catch (err) {
      fail(err, scheduleNext);
    }
  }

  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(129));
    };
    this.errorCallbacks.unhandledRejection = (error) => {
      this.client.postInvocationError(error, id, () => process.exit(128));
    };
  }

  // If the event loop empties before the handler reports: an async handler whose promise never
  // settled fails with Runtime.NodeJsExit; any other handler succeeds with null.
  setDefaultExitListener(id, markCompleted, isAsync) {
    beforeExitListener.set(() => {
      markCompleted();
      if (isAsync) {
        const error = new NodeJsExit();
        structuredConsole.logError('Invoke Error', error);
        this.client.postInvocationError(error, id, this.scheduleNext, true);
      } else {
        this.client.postInvocationResponse(null, id, this.scheduleNext, true);
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------

// AWS starts node with --expose-gc; a lazy stand-in keeps `global.gc()` working without the flag.
function exposeGc() {
  if (typeof globalThis.gc === 'function') return;
  let realGc = null;
  globalThis.gc = function gc(...args) {
    if (realGc === null) {
      require('node:v8').setFlagsFromString('--expose-gc');
      realGc = require('node:vm').runInNewContext('gc');
    }
    return realGc(...args);
  };
}

function main() {
  const endpoint = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!endpoint) fatal('AWS_LAMBDA_RUNTIME_API is not set', 1);

  patchConsole();
  exposeGc();
  const client = new RuntimeApiClient(endpoint);
  client.preconnect();

  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
  };
  process.on('uncaughtException', (error) => {
    if (dying) return;
    structuredConsole.logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
    dying = true; // after the report's post is queued, before anything else is
  });
  process.on('unhandledRejection', (reason, promise) => {
    if (dying) return;
    const error = new UnhandledPromiseRejection(reason, promise);
    structuredConsole.logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
    dying = true;
  });
  beforeExitListener.reset();
  process.on('beforeExit', beforeExitListener.invoke);

  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  loadHandler(appRoot, process.env._HANDLER)
    .then((handler) => {
      const metadata = handlerMetadata(handler);
      const refused = callbackHandlerRefused(metadata);
      if (refused) {
        structuredConsole.logError('Init Error', refused);
        client.postInitError(refused, () => process.exit(129));
        return;
      }
      warnAboutCallbackHandler(metadata);
      if (metadata.streaming) loadStreamingSupport();
      new Runtime(client, handler, metadata, errorCallbacks).scheduleIteration();
    })
    .catch((error) => {
      // The official runtime awaits the load at the top level of its ES module entry, so a
      // failure surfaces as an uncaught exception: logged, posted to /init/error, exit 129.
      process.nextTick(() => {
        throw error;
      });
    });
}

main();
