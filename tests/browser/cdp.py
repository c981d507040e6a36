"""cdp.py - a headless Chromium driven over the Chrome DevTools Protocol, in the Python 3
standard library: the browser process, an RFC 6455 WebSocket client (client framing with
masking, text frames, fragmented messages, ping/pong, close) and a CDP session on one page that
records what a page must never do (open a dialog, throw, log an error or a warning).

    with Browser(width=1200, height=900) as b:
        b.navigate("http://127.0.0.1:PORT/challenges")
        rows = b.evaluate("[...document.querySelectorAll('tr')].length")
        png = b.screenshot()          # PNG bytes of the viewport, device scale factor 1
        b.problems                    # [(kind, text)]: dialogs, exceptions, console errors

The browser runs in its own process group with a profile in a temporary directory; close()
(also on an exception inside the with block, and at interpreter exit) ends the group and
removes the directory."""

import atexit
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3


class ProtocolError(Exception):
    """The browser, the WebSocket or a CDP command answered something unexpected."""


# ---- WebSocket (RFC 6455, client side) -------------------------------------------------------


def ws_accept(key):
    """The Sec-WebSocket-Accept value a server must answer to key (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_mask(payload, key):
    """payload XOR the 4-byte key repeated (RFC 6455, 5.3): masking and unmasking alike."""
    n = len(payload)
    if n == 0:
        return b""
    reps = key * (n // 4 + 1)
    x = int.from_bytes(payload, "big") ^ int.from_bytes(reps[:n], "big")
    return x.to_bytes(n, "big")


def ws_frame(opcode, payload, fin=True, key=None):
    """One client frame (always masked, as a client's must be; key: 4 bytes, random if None)."""
    key = key if key is not None else os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + ws_mask(payload, key)


class WebSocket:
    """A WebSocket client over a connected socket (connect() does the opening handshake).
    recv() returns one whole message (fragments joined; pings answered; a close frame raises
    ProtocolError)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    def connect(cls, url, timeout=30):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws":
            raise ProtocolError("only ws:// URLs: " + url)
        sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + ("?" + u.query if u.query else "")
        req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        sock.sendall(req.encode())
        ws = cls(sock)
        head = ws._read_until(b"\r\n\r\n", time.monotonic() + timeout).decode("latin-1")
        lines = head.split("\r\n")
        if not re.match(r"HTTP/1\.1 101 ", lines[0]):
            sock.close()
            raise ProtocolError("WebSocket handshake refused: " + lines[0])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if fields.get("sec-websocket-accept") != ws_accept(key):
            sock.close()
            raise ProtocolError("WebSocket handshake: wrong Sec-WebSocket-Accept")
        return ws

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("WebSocket: nothing received in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("WebSocket: nothing received in time") from None
        if not chunk:
            raise ProtocolError("WebSocket: the connection was closed")
        self.buf += chunk

    def _read_until(self, sep, deadline):
        while sep not in self.buf:
            self._fill(deadline)
        i = self.buf.index(sep) + len(sep)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def _read(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def send_text(self, text, key=None):
        self.sock.sendall(ws_frame(0x1, text.encode(), key=key))

    def close(self):
        try:
            self.sock.sendall(ws_frame(0x8, (1000).to_bytes(2, "big")))
        except OSError:
            pass
        self.sock.close()

    def read_frame(self, deadline):
        """(fin, opcode, payload) of the next frame (unmasked if the server masked it)."""
        b0, b1 = self._read(2, deadline)
        if b0 & 0x70:
            raise ProtocolError("WebSocket: reserved bits set (no extension was negotiated)")
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._read(2, deadline), "big")
        elif n == 127:
            n = int.from_bytes(self._read(8, deadline), "big")
        key = self._read(4, deadline) if b1 & 0x80 else None
        payload = self._read(n, deadline)
        if key:
            payload = ws_mask(payload, key)
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self, timeout=60):
        """The next whole data message: str for text, bytes for binary."""
        deadline = time.monotonic() + timeout
        parts, first = [], None
        while True:
            fin, op, payload = self.read_frame(deadline)
            if op == 0x9:  # ping: answer with the same payload (control frames may come
                self.sock.sendall(ws_frame(0xA, payload))  # between fragments)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                raise ProtocolError(f"WebSocket closed by the server (code {code})")
            if op in (0x1, 0x2):
                if first is not None:
                    raise ProtocolError("WebSocket: a new message inside a fragmented one")
                first = op
            elif op == 0x0:
                if first is None:
                    raise ProtocolError("WebSocket: a continuation frame with no message")
            else:
                raise ProtocolError(f"WebSocket: unknown opcode {op}")
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return data.decode("utf-8") if first == 0x1 else data


# ---- the browser -----------------------------------------------------------------------------

_live = set()


@atexit.register
def _close_all():
    for b in list(_live):
        b.close()


def chromium_path():
    """Debian's chromium (or $SEGLOSS_CHROMIUM), or None."""
    for cand in (os.environ.get("SEGLOSS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def base_flags(profile):
    """The flags of every chromium run here: headless-friendly, no first-run noise, sRGB
    output (so a screenshot's pixels are the page's colours), no sandbox only when root."""
    flags = [f"--user-data-dir={profile}", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--hide-scrollbars", "--force-color-profile=srgb",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--mute-audio", "--disable-features=Translate,MediaRouter,OptimizationHints"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")
    return flags


class Browser:
    """A headless chromium and a CDP session attached to its one page."""

    def __init__(self, width=1200, height=900, chromium=None, timeout=60):
        self.width, self.height = width, height
        self.timeout = timeout
        self.proc = None
        self.ws = None
        self.tmp = tempfile.mkdtemp(prefix="segloss-browser-")
        self.next_id = 0
        self.events = []  # queued events not yet looked at
        self.problems = []  # (kind, text): dialog, exception, console, log
        self.session = None
        self.scripts_off = False
        _live.add(self)
        try:
            self._start(chromium or chromium_path())
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _start(self, exe):
        if not exe:
            raise ProtocolError("no chromium (Debian: apt-get install chromium)")
        self.errpath = os.path.join(self.tmp, "stderr")
        err = open(self.errpath, "wb")
        args = [exe, "--headless=new", "--remote-debugging-port=0", *base_flags(
            os.path.join(self.tmp, "profile")), f"--window-size={self.width},{self.height}",
            "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, start_new_session=True)
        err.close()
        url = None
        deadline = time.monotonic() + self.timeout
        while url is None and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProtocolError("chromium exited at start: " + self.stderr_tail())
            with open(self.errpath, "rb") as f:
                m = re.search(rb"DevTools listening on (ws://\S+)", f.read())
            if m:
                url = m.group(1).decode()
            else:
                time.sleep(0.05)
        if url is None:
            raise ProtocolError("chromium printed no DevTools URL: " + self.stderr_tail())
        self.ws = WebSocket.connect(url, self.timeout)
        targets = self.call("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        if not pages:
            pages = [{"targetId": self.call("Target.createTarget", url="about:blank")["targetId"]}]
        self.session = self.call("Target.attachToTarget", targetId=pages[0]["targetId"],
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def stderr_tail(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self):
        """Ends chromium (its whole process group) and removes its profile; safe to repeat."""
        _live.discard(self)
        if self.ws:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:
                pass
            self.ws.close()
            self.ws = None
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)  # the group this Popen started
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(5)
                    time.sleep(0.2)  # the children of the group after the main process
                except subprocess.TimeoutExpired:
                    pass
            self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    # -- the protocol --

    def _raw_send(self, method, params, browser_level=False):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and not browser_level:
            msg["sessionId"] = self.session
        self.ws.send_text(json.dumps(msg))
        return self.next_id

    def _pump(self, deadline):
        """Reads one message; events are noted (dialogs dismissed at once) and queued;
        returns the message."""
        msg = json.loads(self.ws.recv(max(0.01, deadline - time.monotonic())))
        if "method" in msg:
            self._note(msg["method"], msg.get("params", {}))
            self.events.append(msg)
        return msg

    def _note(self, method, p):
        if method == "Page.javascriptDialogOpening":
            self.problems.append(("dialog", f"{p.get('type')}: {p.get('message')}"))
            self._raw_send("Page.handleJavaScriptDialog", {"accept": False})
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = (d.get("exception") or {}).get("description") or d.get("text")
            self.problems.append(("exception", f"{desc} at {d.get('url')}:{d.get('lineNumber')}"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning",
                                                                        "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in
                            p.get("args", []))
            self.problems.append(("console." + p["type"], args))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            if e.get("level") == "error":
                self.problems.append(("log", f"{e.get('source')}: {e.get('text')} "
                                             f"{e.get('url') or ''}".strip()))

    def call(self, method, timeout=None, **params):
        """Sends one command and waits for its answer; returns its result (ProtocolError on
        an error answer). Commands before attachment go to the browser itself."""
        browser_level = method.startswith(("Target.", "Browser."))
        want = self._raw_send(method, params, browser_level)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._pump(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise ProtocolError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    send = call

    def wait_event(self, method, timeout=None):
        """The params of the first queued or coming event named method (removed from the
        queue)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, m in enumerate(self.events):
                if m["method"] == method:
                    del self.events[i]
                    return m.get("params", {})
            self._pump(deadline)

    # -- what the tests use --

    def navigate(self, url):
        """Loads url and waits for its load event (and two frames); ProtocolError when the
        browser could not load it."""
        self.events.clear()
        r = self.call("Page.navigate", url=url)
        if r.get("errorText"):
            raise ProtocolError(f"navigate {url}: {r['errorText']}")
        self.wait_event("Page.loadEventFired")
        self.settle()

    def set_content(self, html):
        """Replaces about:blank's document with html (Page.setDocumentContent) and waits for
        two frames: a page that came from a POST, shown without a URL to load it from."""
        self.navigate("about:blank")
        frame = self.call("Page.getFrameTree")["frameTree"]["frame"]["id"]
        self.call("Page.setDocumentContent", frameId=frame, html=html)
        self.settle()

    def settle(self):
        """Waits for two animation frames (none run while scripts are off: then nothing)."""
        if not self.scripts_off:
            self.evaluate("new Promise(r => requestAnimationFrame(() => "
                          "requestAnimationFrame(r)))", await_promise=True)

    def scripts(self, on):
        """Turns the page's JavaScript on or off (evaluate still works): the page without
        its scripts, as with JavaScript disabled."""
        self.call("Emulation.setScriptExecutionDisabled", value=not on)
        self.scripts_off = not on

    def evaluate(self, expr, await_promise=False):
        """The value of the JavaScript expression expr (JSON-like: returnByValue); a thrown
        exception raises ProtocolError (and is not a page problem)."""
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=await_promise)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise ProtocolError("evaluate: " + ((d.get("exception") or {}).get("description")
                                                or d.get("text", "")))
        return r.get("result", {}).get("value")

    def outer_html(self):
        """The document's serialised DOM (DOM.getOuterHTML of the root)."""
        root = self.call("DOM.getDocument", depth=0)["root"]["nodeId"]
        return self.call("DOM.getOuterHTML", nodeId=root)["outerHTML"]

    def screenshot(self, full_page=False):
        """PNG bytes of the viewport (full_page: of the whole document at its full height)."""
        params = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])


def run_cli(args, timeout=30):
    """Runs chromium once in a plain CLI mode (--headless plus args, e.g. --dump-dom URL) with
    a temporary profile; returns (exit status, stdout bytes, stderr text); the status is None
    when it ran out of time (a page that opens a dialog never finishes in these modes)."""
    exe = chromium_path()
    if not exe:
        raise ProtocolError("no chromium (Debian: apt-get install chromium)")
    tmp = tempfile.mkdtemp(prefix="segloss-browser-cli-")
    proc = None
    try:
        proc = subprocess.Popen([exe, "--headless", *base_flags(os.path.join(tmp, "p")), *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return None, out, f"timed out after {timeout} s: " + err.decode("utf-8", "replace")
        return proc.returncode, out, err.decode("utf-8", "replace")
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group it started
            except ProcessLookupError:
                pass
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
