"""Small debugger clients for the tests: the Chrome DevTools Protocol over a WebSocket (what
VS Code and chrome://inspect speak to `node --inspect`) and the Debug Adapter Protocol (what
VS Code speaks to debugpy). Enough of each to attach, set a breakpoint, evaluate and resume."""
import base64
import json
import os
import socket
import struct
import time
import urllib.parse


class CdpClient:
    """One WebSocket connection to a V8 inspector target (ws://host:port/id)."""

    def __init__(self, ws_url, timeout=20):
        u = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the inspector closed the connection during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head!r}")
        self.next_id = 0
        self.events = []

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the inspector closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_message(self):
        data = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("the inspector closed the WebSocket")
            if opcode in (0, 1, 2):
                data += payload
                if b0 & 0x80:
                    return json.loads(data)

    def _send_message(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self._send_message({"id": my_id, "method": method, "params": params})
        while True:
            msg = self._read_message()
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, ev in enumerate(self.events):
                if ev["method"] == method:
                    return self.events.pop(i)
            self.sock.settimeout(max(0.05, deadline - time.time()))
            msg = self._read_message()
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"no {method} event within {timeout} s")

    def script_url(self, script_id):
        """The URL of a script, from the Debugger.scriptParsed events seen so far (a paused call
        frame's own url field is empty in current V8)."""
        for ev in self.events:
            if ev["method"] == "Debugger.scriptParsed" and ev["params"]["scriptId"] == script_id:
                return ev["params"]["url"]
        return ""

    def close(self):
        self.sock.close()


class DapClient:
    """One Debug Adapter Protocol connection (debugpy --listen)."""

    def __init__(self, host, port, timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.seq = 0
        self.messages = []

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the debug adapter closed the connection")
            self.buf += chunk
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the debug adapter closed the connection")
            rest += chunk
        self.buf = rest[length:]
        return json.loads(rest[:length])

    def send(self, command, **arguments):
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _wait(self, match, what, timeout):
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if match(m):
                    return self.messages.pop(i)
            if time.time() > deadline:
                raise TimeoutError(f"no {what} within {timeout} s; seen {[m.get('event') or m.get('command') for m in self.messages]}")
            self.sock.settimeout(max(0.05, deadline - time.time()))
            self.messages.append(self._read())

    def response(self, seq, timeout=20):
        r = self._wait(lambda m: m.get("type") == "response" and m.get("request_seq") == seq, f"answer to #{seq}", timeout)
        if not r.get("success"):
            raise RuntimeError(f"{r.get('command')}: {r.get('message')}")
        return r.get("body", {})

    def request(self, command, timeout=20, **arguments):
        return self.response(self.send(command, **arguments), timeout)

    def wait_event(self, event, timeout=20):
        return self._wait(lambda m: m.get("type") == "event" and m.get("event") == event, f"{event} event", timeout)

    def close(self):
        self.sock.close()
