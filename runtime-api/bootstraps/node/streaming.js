'use strict';
// Response streaming (awslambda.streamifyResponse): loaded by bootstrap.js only for streaming
// handlers. The response goes to POST /invocation/{id}/response on its own connection (a
// kept-alive http.Agent, as the official runtime does) with
//   Lambda-Runtime-Function-Response-Mode: streaming
//   Transfer-Encoding: chunked
//   Trailer: Lambda-Runtime-Function-Error-Type
//   Trailer: Lambda-Runtime-Function-Error-Body
// and a failure after the stream was created is reported in those trailers (error body in
// base64), never through /error.

const http = require('node:http');
const net = require('node:net');

const API_PREFIX = '/2018-06-01/runtime';
const TRAILER_ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const TRAILER_ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

// What handler code gets: the Writable and EventEmitter methods of the underlying request, a few
// properties, and setContentType. Nothing else of the HTTP request leaks out.
const FORWARDED_METHODS = [
  'cork',
  'destroy',
  'end',
  'uncork',
  'write',
  'addListener',
  'emit',
  'eventNames',
  'getMaxListeners',
  'listenerCount',
  'listeners',
  'off',
  'on',
  'once',
  'prependListener',
  'prependOnceListener',
  'rawListeners',
  'removeAllListeners',
  'removeListener',
  'setMaxListeners',
  'setContentType',
];
const FORWARDED_READ_WRITE = ['destroyed', 'writable', '_onBeforeFirstWrite'];
const FORWARDED_READ_ONLY = [
  'writableFinished',
  'writableObjectMode',
  'writableBuffer',
  'writableEnded',
  'writableNeedDrain',
  'writableHighWaterMark',
  'writableCorked',
  'writableLength',
];

module.exports = function streamingSupport({
  beforeExitListener,
  structuredConsole,
  toRapidResponse,
  InvalidStreamingOperation,
}) {
  const failures = new WeakMap(); // exposed stream -> (err, callback) that ends it with trailers

  function exposeWritable(inner) {
    const stream = {};
    for (const name of FORWARDED_METHODS) stream[name] = inner[name].bind(inner);
    for (const name of FORWARDED_READ_WRITE) {
      Object.defineProperty(stream, name, {
        get: () => inner[name],
        set: (value) => {
          inner[name] = value;
        },
      });
    }
    for (const name of FORWARDED_READ_ONLY) {
      Object.defineProperty(stream, name, { get: () => inner[name] });
    }
    return stream;
  }

  function createResponseStream(client, id, options) {
    if (client.streamAgent === null) {
      client.streamAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    }
    const agent = client.streamAgent;
    const highWaterMark = options?.highWaterMark;
    agent.createConnection = (opts, onConnect) =>
      net.createConnection({ ...opts, highWaterMark }, onConnect);

    let firstWriteDone = false;
    let resolveDone;
    let rejectDone;
    const responseDone = new Promise((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });

    const req = http.request(
      {
        hostname: client.host,
        port: client.port,
        method: 'POST',
        path: `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
        headers: {
          'Lambda-Runtime-Function-Response-Mode': 'streaming',
          Trailer: [TRAILER_ERROR_TYPE, TRAILER_ERROR_BODY],
          'Content-Type': DEFAULT_CONTENT_TYPE,
        },
        agent,
      },
      (res) => {
        let body;
        res.on('data', (chunk) => {
          body = body === undefined ? chunk : Buffer.concat([body, chunk]);
        });
        res.on('aborted', (err) => {
          rejectDone(err);
          req.destroy(err);
        });
        res.on('end', () => resolveDone(body));
      },
    );
    req.on('error', (err) => {
      rejectDone(err);
      req.destroy(err);
    });

    // end() forwards its first argument only, as in the official runtime (end(data) sends the
    // data but, bypassing write(), no HttpResponseStream prelude).
    const originalEnd = req.end.bind(req);
    req.end = function (arg) {
      originalEnd(arg);
    };

    req.setContentType = function (contentType) {
      if (firstWriteDone) {
        throw new InvalidStreamingOperation('Cannot set content-type, too late.');
      }
      req.setHeader('Content-Type', contentType);
    };

    const originalWrite = req.write.bind(req);
    req.write = function (chunk, encoding, callback) {
      if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && chunk?.constructor !== Uint8Array) {
        chunk = JSON.stringify(chunk);
      }
      if (!firstWriteDone && typeof this._onBeforeFirstWrite === 'function') {
        this._onBeforeFirstWrite((data) => originalWrite(data));
      }
      const ret = originalWrite(chunk, encoding, callback);
      firstWriteDone = true;
      return ret;
    };

    const stream = exposeWritable(req);
    failures.set(stream, (err, callback) => {
      const error = toRapidResponse(err);
      req.addTrailers({
        [TRAILER_ERROR_TYPE]: error.errorType,
        [TRAILER_ERROR_BODY]: Buffer.from(JSON.stringify(error)).toString('base64'),
      });
      req.end(callback);
    });
    return { request: stream, responseDone };
  }

  function buildStreamingContext(client, id, scheduleNext, options) {
    let waitForEmptyEventLoop = true;
    // By default the next invocation is fetched once the event loop is empty, as for callbacks.
    const scheduleNextNow = () => {
      if (!waitForEmptyEventLoop) scheduleNext();
      else beforeExitListener.set(() => setImmediate(() => scheduleNext()));
    };

    let streamCreated = false;
    return {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      createStream: (callback) => {
        if (streamCreated) {
          throw new InvalidStreamingOperation(
            'Cannot create stream for the same StreamingContext more than once.',
          );
        }
        const { request: responseStream, responseDone } = createResponseStream(client, id, options);
        const rapidResponse = responseDone.then(() => {
          if (callback) callback();
        });
        streamCreated = true;
        return {
          fail: (err, cb) => {
            structuredConsole.logError('Invoke Error', err);
            const failStream = failures.get(responseStream);
            if (typeof failStream === 'function') failStream(err, cb);
          },
          responseStream,
          rapidResponse,
          scheduleNext: () => {
            beforeExitListener.reset();
            scheduleNextNow();
          },
        };
      },
    };
  }

  return { buildStreamingContext };
};
