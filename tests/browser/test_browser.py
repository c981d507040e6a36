"""test_browser.py - the leaderboard pages and the scoring report (their structure: docs/html.md)
in a real headless Chromium driven over the DevTools protocol (cdp.py), against a real
seglossd on an ephemeral port with a temporary data directory.

What a page shows is checked against what the JSON API answers for the same thing (the
leaderboard rows, the score answer) and against values worked out by hand here (which pixels of
a 4x4 case are TP, FP, FN, TN; Dice 2|P and T| / (|P| + |T|)); the overlay colours are the
contract's (Paul Tol's high-contrast and muted schemes), read back from screenshots decoded by
png.py. Hostile text (titles, notes) must show as text: no element injected, no dialog, no
console error, no exception.

The harness is tested first on pages written here: RFC 6455's own example frames, PNGs with
every filter type decoded both by png.py and by Chromium, and a page that does everything a
page must not (the recorder must catch each).

SEGLOSS_DOCS_SHOTS=DIR also saves the README's screenshots (challenge page, report) into DIR.
Each test is "browser/NAME" for make test T=PATTERN. Python 3 standard library + numpy."""

import argparse
import base64
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TESTS, "clients"))
sys.path.insert(0, os.path.join(TESTS, "challenges"))
import cdp  # noqa: E402
import harness  # noqa: E402  (tests/clients/harness.py)
import png  # noqa: E402
import test_challenges as tc  # noqa: E402  (the challenge fixture: Env, stacked, REF, ...)

import numpy as np  # noqa: E402

# The contract's colours (docs/html.md; proto/html.h's SLP_HTML_TP/FP/FN)
TP, FP, FN, TN = (png.hex_rgb(c) for c in ("#DDAA33", "#BB5566", "#004488", "#FFFFFF"))
MUTED = [png.hex_rgb(c) for c in ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
                                  "#DDCC77", "#CC6677", "#882255", "#AA4499")]
BLACK = (0, 0, 0)


def class_colour(k):
    """The contract's colour of class k: 0 white, then the muted scheme, repeating."""
    return (255, 255, 255) if k == 0 else MUTED[(k - 1) % len(MUTED)]


def get(url, accept=None):
    """(status, content type, body bytes) of a GET."""
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def post_json(url, body, accept):
    """(status, content type, body bytes) of a JSON POST with the given Accept."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def not_blank(t, img, what):
    """Checks that a decoded screenshot has several distinct colours and no colour covering
    nearly all of it."""
    counts = {}
    mv = memoryview(img.rgba)
    for i in range(0, len(mv), 4 * 7):  # every 7th pixel is plenty
        c = bytes(mv[i:i + 3])
        counts[c] = counts.get(c, 0) + 1
    top = max(counts.values()) / sum(counts.values())
    t.check(len(counts) >= 8 and top < 0.999, f"{what}: screenshot not blank "
            f"({img.width}x{img.height}, {len(counts)} colours, commonest {top:.1%})",
            f"{len(counts)} colours, commonest {top:.1%}")


def is_favicon(problem):
    return problem[0] == "log" and "/favicon.ico" in problem[1]


def no_problems(t, b, what):
    """Checks that the page recorded no problem; a failed /favicon.ico request (Chromium asks
    for one on every http page) is its own check, in test_pages."""
    favicon = [p for p in b.problems if is_favicon(p)]
    b.problems[:] = [p for p in b.problems if not is_favicon(p)]
    b.favicon_failures = getattr(b, "favicon_failures", []) + favicon
    t.check(not b.problems, f"{what}: no dialog, exception or console error/warning",
            repr(b.problems)[:600])
    b.problems.clear()


def num_equal(dom_value, want):
    """Whether a data-value attribute (exact decimal or "null") equals the JSON value."""
    if want is None:
        return dom_value == "null"
    try:
        return float(dom_value) == float(want)
    except (TypeError, ValueError):
        return False


# ---- the harness, on pages written here --------------------------------------------------------


def test_harness_websocket(t, _ctx):
    # RFC 6455's examples: section 1.3 (handshake), 5.7 (frames)
    t.check(cdp.ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            "Sec-WebSocket-Accept of RFC 6455's example key")
    a, b = socket.socketpair()
    try:
        ws = cdp.WebSocket(a)
        ws.send_text("Hello", key=bytes([0x37, 0xFA, 0x21, 0x3D]))
        got = b.recv(100)
        t.check(got == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
                "a masked text frame is RFC 6455's example bytes", got.hex())
        b.sendall(bytes([0x81, 0x05]) + b"Hello")
        t.check(ws.recv(5) == "Hello", "an unmasked single-frame text message")
        # fragmented, with a ping between the fragments (which must be answered)
        b.sendall(bytes([0x01, 0x03]) + b"Hel" + bytes([0x89, 0x05]) + b"Hello" +
                  bytes([0x80, 0x02]) + b"lo")
        t.check(ws.recv(5) == "Hello", "a fragmented message with a ping inside is joined")
        pong = b.recv(100)
        t.check(pong[0] == 0x8A and pong[1] == 0x85 and
                cdp.ws_mask(pong[6:11], pong[2:6]) == b"Hello",
                "the ping is answered by a masked pong with its payload", pong.hex())
        b.sendall(bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(range(256)))
        t.check(ws.recv(5) == bytes(range(256)), "a 256-byte binary message (16-bit length)")
        big = os.urandom(65536)
        b.sendall(bytes([0x82, 0x7F]) + (65536).to_bytes(8, "big") + big)
        t.check(ws.recv(5) == big, "a 64 KiB binary message (64-bit length)")
        b.sendall(bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]))
        t.check(ws.recv(5) == "Hello", "a masked frame from the peer is unmasked")
        b.sendall(bytes([0x88, 0x02, 0x03, 0xE8]))
        try:
            ws.recv(5)
            closed = False
        except cdp.ProtocolError as e:
            closed = "1000" in str(e)
        t.check(closed, "a close frame ends the stream with its code")
    finally:
        a.close()
        b.close()


def test_harness_png(t, _ctx):
    rng = np.random.default_rng(7)
    w, h = 13, 10
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    pixels[..., 3] = 255  # opaque: a canvas gives premultiplied-free values only then
    raw = pixels.tobytes()
    data = png.encode(w, h, raw, [0, 1, 2, 3, 4])
    img = png.decode(data)
    t.check(img.rgba == raw and img.filters == [2, 2, 2, 2, 2],
            "png.py reads back a PNG with every filter type (two rows each)", repr(img.filters))
    # Chromium's own decoder reads the same PNG: the encoder wrote real PNG
    with cdp.Browser(200, 100) as b:
        b.navigate("about:blank")
        got = b.evaluate(
            "new Promise((ok, bad) => { const i = new Image(); i.onerror = () => bad('decode');"
            " i.onload = () => { const c = document.createElement('canvas'); c.width = i.width;"
            " c.height = i.height; const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
            f" ok(Array.from(x.getImageData(0, 0, i.width, i.height).data)); }};"
            f" i.src = 'data:image/png;base64,{base64.b64encode(data).decode()}'; }})",
            await_promise=True)
        t.check(got is not None and bytes(got) == raw, "Chromium decodes the same PNG to the "
                "same pixels")
        no_problems(t, b, "the PNG page")
    crc_bad = bytearray(data)
    crc_bad[20] ^= 1  # a bit of IHDR's body
    ihdr16 = png.chunk(b"IHDR", bytes([0, 0, 0, 2, 0, 0, 0, 2, 16, 2, 0, 0, 0]))
    adam7 = png.chunk(b"IHDR", bytes([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 1]))
    for bad, why in ((b"GIF89a" + bytes(20), "bad signature"), (bytes(crc_bad), "CRC"),
                     (data[:40], "truncated"), (png.SIGNATURE + ihdr16, "bit depth 16"),
                     (png.SIGNATURE + adam7, "interlaced")):
        try:
            png.decode(bad)
            ok = False
        except png.PNGError as e:
            ok = why in str(e)
        t.check(ok, f"png.py refuses clearly: {why}")


def test_harness_problems(t, ctx):
    """The recorder catches each thing a page must not do, and the page goes on after a
    dismissed dialog."""
    page = os.path.join(ctx.tmp, "bad.html")
    with open(page, "w") as f:
        f.write("<!DOCTYPE html><html><head><meta charset=utf-8><title>bad</title></head>"
                "<body style='margin:0;background:#FFFFFF'>"
                "<div id=box style='position:absolute;left:10px;top:20px;width:30px;"
                "height:40px;background:#BB5566'></div>"
                "<script>window.before = confirm('sure?');</script>"
                "<script>console.error('an error'); console.warn('a warning');"
                "document.body.dataset.after = 'yes'; undefinedFunction();</script>"
                "</body></html>")
    with cdp.Browser(300, 200) as b:
        b.navigate("file://" + page)
        kinds = sorted(k for k, _ in b.problems)
        t.check(kinds == ["console.error", "console.warning", "dialog", "exception"],
                "dialog, console.error, console.warn and an exception are all recorded",
                repr(b.problems))
        t.check(b.evaluate("[window.before, document.body.dataset.after]") == [False, "yes"],
                "the dialog was dismissed (confirm gave false) and the page went on")
        b.problems.clear()
        t.check(b.evaluate("document.getElementById('box').getBoundingClientRect().toJSON()")
                == {"x": 10, "y": 20, "left": 10, "top": 20, "width": 30, "height": 40,
                    "right": 40, "bottom": 60}, "getBoundingClientRect in CSS pixels")
        img = png.decode(b.screenshot())
        t.check((img.width, img.height) == (300, 200), "the screenshot is the viewport at "
                "device scale 1", f"{img.width}x{img.height}")
        t.check(png.near(img.pixel(10, 20), FP, 0) and png.near(img.pixel(39, 59), FP, 0) and
                png.near(img.pixel(9, 20), TN, 0) and png.near(img.pixel(40, 60), TN, 0),
                "screenshot pixels: the box's corners exact, its outside white",
                repr([img.pixel(10, 20), img.pixel(39, 59), img.pixel(9, 20)]))
        b.set_content("<!DOCTYPE html><p id=p>&lt;b&gt;</p>")
        t.check(b.evaluate("document.getElementById('p').textContent") == "<b>" and
                "&lt;b&gt;" in b.outer_html(), "setDocumentContent and DOM.getOuterHTML")
        no_problems(t, b, "a clean page")
        pid, tmp = b.proc.pid, b.tmp
    left = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                if int(st[2]) == pid and st[0] != "Z":
                    left.append(d)
            except OSError:
                pass
    t.check(not left and not os.path.exists(tmp), "closing ends chromium's process group and "
            "removes its profile", repr(left))


def test_harness_cli(t, ctx):
    """The plain CLI modes: --dump-dom and --screenshot."""
    page = os.path.join(ctx.tmp, "cli.html")
    with open(page, "w") as f:
        f.write("<!DOCTYPE html><body style='margin:0;background:#004488'>"
                "<p id=x style='color:#DDAA33'>dumped</p><script>document.getElementById('x')"
                ".dataset.js = 'ran'</script></body>")
    rc, out, err = cdp.run_cli(["--dump-dom", "file://" + page])
    t.check(rc == 0 and b'<p id="x" style="color:#DDAA33" data-js="ran">dumped</p>' in out,
            "chromium --headless --dump-dom prints the DOM after scripts ran", out[:300])
    shot = os.path.join(ctx.tmp, "cli.png")
    rc, out, err = cdp.run_cli(["--window-size=320,240", f"--screenshot={shot}",
                                "file://" + page])
    ok = rc == 0 and os.path.exists(shot)
    t.check(ok, "chromium --headless --screenshot writes the file", err[-300:])
    if ok:
        with open(shot, "rb") as f:
            img = png.decode(f.read())
        t.check((img.width, img.height) == (320, 240) and png.near(img.pixel(300, 200), FN, 0),
                "the CLI screenshot: 320x240, the page's background colour",
                f"{img.width}x{img.height} {img.pixel(300, 200)}")


# ---- the leaderboard pages -------------------------------------------------------------------

HOSTILE_TITLE = 'Squares <script>alert("t")</script> & "co"'
HOSTILE_DESC = "Line one <b>bold?</b>\nline two <img src=x onerror=alert(2)> & more"
NOTES = {"team-a": "<script>alert(1)</script>", "team-b": '"><img src=x onerror=alert(1)>',
         "team-c": "plain & simple", "team-d": ""}

ROWS_JS = """[...document.querySelectorAll('table#%s tbody tr')].map(tr => ({
  participant: tr.dataset.participant, rank: tr.dataset.rank,
  rankText: tr.querySelector('td.rank')?.textContent.trim(),
  name: tr.querySelector('td.participant')?.textContent,
  note: tr.querySelector('td.note')?.textContent,
  scores: Object.fromEntries([...tr.querySelectorAll('td.num.score')].map(
      td => [td.dataset.key, td.dataset.value])),
  entries: tr.querySelector('td.num.entries')?.textContent.trim(),
  submitted: tr.querySelector('td.submitted time')?.getAttribute('datetime'),
  stale: tr.classList.contains('stale')}))"""


def compare_rows(t, dom, board, what):
    rows = board["rows"]
    t.check(len(dom) == len(rows) and len(rows) > 0, f"{what}: one row per leaderboard row "
            f"({len(rows)})", f"{len(dom)} rows in the page, {len(rows)} in the JSON")
    bad = []
    for d, r in zip(dom, rows):
        same = (d["participant"] == r["participant"] == d["name"] and
                d["rank"] == d["rankText"] == str(r["rank"]) and d["note"] == (r["note"] or "")
                and set(d["scores"]) == set(r["scores"]) and
                all(num_equal(d["scores"][k], v) for k, v in r["scores"].items()) and
                d["entries"] == str(r["entries"]) and d["submitted"] == r["submitted_at"] and
                d["stale"] == bool(r["stale"]))
        if not same:
            bad.append((d, r))
    t.check(not bad and len(dom) == len(rows), f"{what}: rows equal the JSON leaderboard in "
            "order, rank, participant, note, data-value per column, entries, time, stale",
            repr(bad[:1])[:800])


def test_pages(t, ctx):
    env = ctx.env
    cfg = dict(tc.CONFIG, title=HOSTILE_TITLE, description=HOSTILE_DESC)
    tokens = env.setup("hostile", cfg, participants=tuple(NOTES))
    # team-a perfect, team-b and team-d shifted by 1 (a tie: rank 2, 2), team-c by 2
    for p, k in (("team-c", 2), ("team-b", 1), ("team-d", 1), ("team-a", 0)):
        a = env.submit("hostile", tokens[p], tc.shifted(k), NOTES[p] or None)
        t.check(a.status == 201, f"submission of {p} (note {NOTES[p]!r}) accepted", a.raw[:200])
    a = env.submit("hostile", tokens["team-a"], tc.shifted(3), "worse, not shown (keep best)")
    env.setup("plain", dict(tc.CONFIG, title="Plain one"), participants=("solo",))
    board = env.call("GET", "/v1/challenges/hostile/leaderboard?split=public").json
    status, ctype, _ = get(env.url + "/challenges/hostile")
    if not t.check(status == 200 and ctype.startswith("text/html"),
                   "GET /challenges/hostile answers text/html", f"{status} {ctype}"):
        return
    t.check(ctype.replace(" ", "").lower() == "text/html;charset=utf-8",
            "Content-Type is text/html; charset=utf-8", ctype)
    with cdp.Browser(1200, 900) as b:
        # -- the list --
        b.navigate(env.url + "/challenges")
        lst = b.evaluate("""[...document.querySelectorAll('table#challenges tr[data-challenge]')]
            .map(tr => ({name: tr.dataset.challenge, text: tr.textContent,
                         href: tr.querySelector('a')?.getAttribute('href')}))""")
        names = {r["name"]: r for r in lst or []}
        t.check(set(names) == {"hostile", "plain"}, "list: one row per challenge",
                repr(lst)[:300])
        h = names.get("hostile", {})
        t.check(h.get("href") == "/challenges/hostile" and HOSTILE_TITLE in h.get("text", ""),
                "list: the link and the hostile title as text", repr(h)[:300])
        t.check(b.evaluate("document.querySelectorAll('img[src=\"x\"]').length + [...document"
                           ".scripts].filter(s => s.textContent.includes('alert')).length") == 0,
                "list: nothing injected by the title")
        not_blank(t, png.decode(b.screenshot()), "list")
        no_problems(t, b, "list")
        # -- the challenge page --
        b.navigate(env.url + "/challenges/hostile")
        head = b.evaluate("({h1: document.querySelector('h1')?.textContent, desc: document"
                          ".querySelector('p.description')?.innerText, rules: !!document"
                          ".querySelector('dl#rules'), times: [...document.querySelectorAll("
                          "'dl#rules time')].map(x => x.getAttribute('datetime'))})")
        t.check(head["h1"] == HOSTILE_TITLE, "h1 is the title, as text", repr(head["h1"]))
        t.check(head["desc"] == HOSTILE_DESC, "p.description is the description as text, "
                "newlines kept", repr(head["desc"]))
        t.check(head["rules"] and all(x and x.endswith("Z") for x in head["times"]),
                "dl#rules with RFC 3339 UTC times", repr(head)[:300])
        cols = b.evaluate("[...document.querySelectorAll('table#public thead th[data-key]')]"
                          ".map(th => [th.dataset.key, th.dataset.order, th.textContent])")
        want_cols = [[c["key"], c["order"]] for c in board["columns"]]
        t.check([c[:2] for c in cols] == want_cols and all(
            ("higher is better" if o == "desc" else "lower is better") in s for _, o, s in cols),
            "thead: one th per column with data-key, data-order and which way is better",
            repr(cols))
        compare_rows(t, b.evaluate(ROWS_JS % "public"), board, "public board")
        ranks = [r["rank"] for r in board["rows"]]
        t.check(ranks == [1, 2, 2, 4], "the JSON board ranks 1, 2, 2, 4 (team-b and team-d "
                "tie, shifted alike)", repr(ranks))
        notes = b.evaluate("Object.fromEntries([...document.querySelectorAll('table#public "
                           "tbody tr')].map(tr => [tr.dataset.participant, tr.querySelector("
                           "'td.note').textContent]))")
        t.check(notes.get("team-a") == NOTES["team-a"] and notes.get("team-b") == NOTES["team-b"],
                "the hostile notes show as text", repr(notes))
        injected = b.evaluate("document.querySelectorAll('table script, table img, "
                              "img[src=\"x\"], p.description *:not(br), h1 *').length + "
                              "[...document"
                              ".scripts].filter(s => s.textContent.includes('alert')).length")
        t.check(injected == 0, "no script or img element injected by a note, the title or the "
                "description", repr(injected))
        ext = b.evaluate("[...document.querySelectorAll('[src], [href]')].map(e => e"
                         ".getAttribute('src') || e.getAttribute('href')).filter(u => "
                         "/^[a-z]+:/i.test(u) && !u.startsWith('data:'))")
        t.check(ext == [], "no external asset (no absolute URL in src or href)", repr(ext))
        chart = b.evaluate("({svg: !!document.querySelector('svg#history'), series: [...document"
                           ".querySelectorAll('svg#history path.series')].map(p => p.dataset"
                           ".participant), d: [...document.querySelectorAll('svg#history "
                           "path.series')].every(p => (p.getAttribute('d') || '').length > 0)})")
        top = [r["participant"] for r in board["rows"][:10]]
        t.check(chart["svg"], "svg#history present")
        t.check(sorted(chart["series"]) == sorted(top) and chart["d"], "one path.series with a "
                "d per top participant", repr(chart))
        shot = png.decode(b.screenshot())
        not_blank(t, shot, "challenge page")
        no_problems(t, b, "challenge page")
        # sorting: a click on a column's th orders that table by it, without a console error
        key = board["columns"][1]["key"]
        vals = b.evaluate(f"document.querySelector('table#public th[data-key=\"{key}\"]')"
                          f".click(), [...document.querySelectorAll('table#public tbody "
                          f"td.score[data-key=\"{key}\"]')].map(td => +td.dataset.value)")
        t.check(vals in (sorted(vals), sorted(vals, reverse=True)) and len(vals) == 4,
                f"a click on th {key} sorts the table by it", repr(vals))
        no_problems(t, b, "sorting")
        # without JavaScript the server's order stands
        b.scripts(False)
        b.navigate(env.url + "/challenges/hostile")
        compare_rows(t, b.evaluate(ROWS_JS % "public"), board, "with JavaScript off")
        b.scripts(True)
        no_problems(t, b, "no-JS page")
        t.check(not b.favicon_failures, "no failed /favicon.ico request (a page declares its "
                "icon, e.g. <link rel=\"icon\" href=\"data:,\">, or the server answers it)",
                repr(b.favicon_failures[:1]))
    # the CLI's --dump-dom on the real page: the notes are escaped in the serialised DOM
    rc, out, err = cdp.run_cli(["--dump-dom", env.url + "/challenges/hostile"])
    t.check(rc == 0 and b'id="public"' in out and b"&lt;script&gt;alert(1)&lt;/script&gt;" in out
            and b"<script>alert(1)" not in out and b"<img src=x" not in out,
            "chromium --dump-dom of the page: the table, the "
            "note escaped", err[-300:])
    shot = os.path.join(ctx.tmp, "page-cli.png")
    rc, out, err = cdp.run_cli(["--window-size=900,700", f"--screenshot={shot}",
                                env.url + "/challenges/hostile"])
    if t.check(rc == 0 and os.path.exists(shot), "chromium --screenshot of the page", err[-300:]):
        with open(shot, "rb") as f:
            not_blank(t, png.decode(f.read()), "CLI screenshot of the page")


# ---- the scoring report -------------------------------------------------------------------

# Image 0 of the binary case, by hand: (row, col) -> what it is
T0 = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
P0 = [[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
# TP (0,0) (1,0); FN (0,1) (1,1); FP (0,2); the rest TN: Dice 2*2/(3+4) = 4/7, IoU 2/5
T1 = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
P1 = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
# TP (3,3), FP (0,0): Dice 2/3, IoU 1/2
BINARY = {"prediction": [P0, P1], "target": [T0, T1], "prediction_type": "labels",
          "metrics": ["dice", "iou"], "losses": ["dice"]}
# mean Dice (4/7 + 2/3) / 2 = 13/21; global Dice from tp 3, |P| 5, |T| 5: 6/10; IoU mean
# (2/5 + 1/2) / 2 = 9/20, global 3 / (3 + 2 + 2) = 3/7; Dice loss 1 - 13/21 = 8/21
BY_HAND = {"metrics.dice.mean": 13 / 21, "metrics.dice.global": 0.6, "metrics.iou.mean": 0.45,
           "metrics.iou.global": 3 / 7, "losses.dice.value": 8 / 21}


def binary_kind(r, c, tgt=T0, pred=P0):
    t_, p_ = tgt[r][c], pred[r][c]
    return {(1, 1): TP, (0, 1): FP, (1, 0): FN, (0, 0): TN}[(t_, p_)]


THUMB_JS = """(() => {
  const f = document.querySelector('section#worst figure.thumb[data-index="%d"]');
  if (!f) return null; const i = f.querySelector('img.overlay');
  i.scrollIntoView({block: 'center'}); const r = i.getBoundingClientRect();
  return {src: i.getAttribute('src'), w: i.getAttribute('width'), h: i.getAttribute('height'),
          scale: i.dataset.scale, left: r.left, top: r.top, rw: r.width, rh: r.height,
          nw: i.naturalWidth, nh: i.naturalHeight, rank: f.dataset.rank, id: f.dataset.id,
          caption: f.querySelector('figcaption')?.textContent}; })()"""


def fetch_report(t, ctx, body, what):
    status, ctype, html = post_json(ctx.env.url + "/v1/score", body, "text/html")
    ok = t.check(status == 200 and ctype.replace(" ", "").lower() == "text/html;charset=utf-8",
                 f"{what}: POST /v1/score with Accept: text/html answers text/html; "
                 "charset=utf-8", f"{status} {ctype} {html[:200]!r}")
    return html.decode("utf-8") if ok else None


def thumb(t, b, index, what):
    """The thumbnail of image index (its img's attributes and position, with the decoded
    data: PNG), or None."""
    th = b.evaluate(THUMB_JS % index)
    if not t.check(th is not None and th["src"].startswith("data:image/png;base64,"),
                   f"{what}: figure.thumb data-index={index} with an img.overlay data: PNG",
                   repr(th)[:300]):
        return None
    b.settle()
    th["img"] = png.decode(base64.b64decode(th["src"].split(",", 1)[1]))
    return th


def check_shot_pixels(t, b, th, points, what, tol=6):
    """points: [(x, y, rgb)] in thumbnail pixels; checks the screenshot's pixels there."""
    shot = png.decode(b.screenshot())
    x0, y0 = round(th["left"]), round(th["top"])
    bad = [(x, y, want, shot.pixel(x0 + x, y0 + y)[:3]) for x, y, want in points
           if not png.near(shot.pixel(x0 + x, y0 + y), want, tol)]
    t.check(not bad, f"{what}: screenshot pixels at {len(points)} places are the contract's "
            "colours", repr(bad[:4]))
    return shot


def test_report_binary(t, ctx):
    status, _, js = post_json(ctx.env.url + "/v1/score", BINARY, "application/json")
    answer = json.loads(js)
    t.check(status == 200 and abs(answer["metrics"]["dice"]["mean"] - 13 / 21) < 1e-12,
            "the JSON answer: mean Dice 13/21 as worked by hand", js[:200])
    html = fetch_report(t, ctx, BINARY, "binary")
    if html is None:
        return
    path = os.path.join(ctx.tmp, "report-binary.html")
    with open(path, "w") as f:
        f.write(html)
    with cdp.Browser(1200, 900) as b:
        b.navigate("file://" + path)
        agg = b.evaluate("Object.fromEntries([...document.querySelectorAll('table#aggregate "
                         "tr[data-key]')].map(tr => [tr.dataset.key, tr.querySelector("
                         "'td.num.value')?.dataset.value]))")

        def from_json(key):
            node = answer
            for part in key.split("."):
                node = node[part]
            return node

        t.check(set(BY_HAND) <= set(agg), "table#aggregate has a row per value key",
                repr(sorted(agg)))
        t.check(all(num_equal(v, from_json(k)) for k, v in agg.items()),
                "every aggregate data-value equals the JSON answer's", repr(agg))
        t.check(all(abs(float(agg.get(k, "nan")) - v) < 1e-12 for k, v in BY_HAND.items()),
                "aggregate values equal the hand-worked ones (13/21, 0.6, 0.45, 3/7, 8/21)",
                repr(agg))
        dist = b.evaluate("Object.fromEntries([...document.querySelectorAll('svg.dist')].map(s "
                          "=> [s.dataset.key, [...s.querySelectorAll('circle')].map(c => "
                          "[+c.dataset.index, c.dataset.value])]))")
        want = {"losses.dice": answer["losses"]["dice"]["per_image"],
                "metrics.dice": answer["metrics"]["dice"]["per_image"],
                "metrics.iou": answer["metrics"]["iou"]["per_image"]}
        t.check(set(dist) == set(want) and all(
            sorted(i for i, _ in dist[k]) == [0, 1] and
            all(num_equal(v, want[k][i]) for i, v in dist[k]) for k in want),
            "one svg.dist per loss and metric, a circle per image with its per-image value",
            repr(dist)[:400])
        th = thumb(t, b, 0, "binary")
        if th:
            img = th["img"]
            t.check((img.width, img.height) == (128, 128) and th["w"] == "128" and
                    th["h"] == "128" and th["scale"] == "32",
                    "a 4x4 image is upscaled 32x to 128x128 (data-scale 32)", repr(
                        {k: th[k] for k in ("w", "h", "scale", "nw", "nh")}))
            t.check(th["rw"] == 128 and th["rh"] == 128, "the thumbnail is shown at its own "
                    "size (no CSS scaling)", f"{th['rw']}x{th['rh']}")
            bad = [(x, y) for y in range(img.height) for x in range(img.width)
                   if img.pixel(x, y)[:3] != binary_kind(y // 32, x // 32)]
            t.check(not bad, "every thumbnail pixel is its image pixel's TP/FP/FN/TN colour "
                    "(decoded from the data: PNG)", repr(bad[:5]))
            pts = [(c * 32 + 16, r * 32 + 16, binary_kind(r, c)) for r, c in
                   ((0, 0), (1, 0), (0, 2), (0, 1), (1, 1), (2, 2), (3, 3))]
            t.check({p[2] for p in pts} == {TP, FP, FN, TN}, "the sampled pixels cover TP, FP, "
                    "FN and TN")
            check_shot_pixels(t, b, th, pts, "binary thumbnail")
        ranks = b.evaluate("Object.fromEntries([...document.querySelectorAll('figure.thumb')]"
                           ".map(f => [f.dataset.index, f.dataset.rank]))")
        t.check(ranks.get("0") == "1", "image 0 (Dice 4/7 < 2/3) is ranked worst (data-rank 1)",
                repr(ranks))
        not_blank(t, png.decode(b.screenshot()), "binary report")
        no_problems(t, b, "binary report")


# Multiclass, 3 classes, 4x4, by hand
MT = [[0, 1, 1, 0], [0, 1, 1, 0], [2, 2, 0, 0], [2, 2, 0, 0]]
MP = [[0, 2, 1, 0], [0, 1, 1, 0], [2, 2, 0, 0], [2, 2, 0, 1]]  # wrong: (0,1) 1->2, (3,3) 0->1


def one_hot(labels, c):
    return [[[1.0 if v == k else 0.0 for v in row] for row in labels] for k in range(c)]


def test_report_multiclass(t, ctx):
    body = {"prediction": [one_hot(MP, 3)], "target": [MT], "prediction_type": "probabilities",
            "metrics": ["dice"]}
    status, _, js = post_json(ctx.env.url + "/v1/score", body, "application/json")
    answer = json.loads(js)
    # per class Dice by hand: class 0: |P| 7, |T| 8, tp 7 -> 14/15; class 1: |P| 4, |T| 4,
    # tp 3 -> 6/8; class 2: |P| 5, |T| 4, tp 4 -> 8/9
    t.check(status == 200 and all(abs(a - b) < 1e-12 for a, b in zip(
        answer["metrics"]["dice"]["per_class"], [14 / 15, 6 / 8, 8 / 9])),
        "the JSON answer: per-class Dice 14/15, 3/4, 8/9 as worked by hand", js[:300])
    html = fetch_report(t, ctx, body, "multiclass")
    if html is None:
        return
    with cdp.Browser(1200, 900) as b:
        b.set_content(html)  # the other way to show a POST's page
        mean = b.evaluate("document.querySelector('table#aggregate tr[data-key=\"metrics.dice"
                          ".mean\"] td.num.value')?.dataset.value")
        t.check(num_equal(mean, answer["metrics"]["dice"]["mean"]),
                "multiclass: metrics.dice.mean's data-value equals the JSON answer's", mean)
        th = thumb(t, b, 0, "multiclass")
        if th:
            img = th["img"]

            def want(x, y):
                r, c = y // 32, x // 32
                if MT[r][c] == MP[r][c]:
                    return class_colour(MT[r][c])
                return BLACK if (x + y) % 4 == 0 else class_colour(MP[r][c])

            bad = [(x, y) for y in range(img.height) for x in range(img.width)
                   if img.pixel(x, y)[:3] != want(x, y)]
            t.check((img.width, img.height) == (128, 128) and not bad, "every thumbnail pixel: "
                    "correct pixels their class colour, wrong ones the predicted class hatched "
                    "black where (x + y) % 4 == 0", repr(bad[:5]))
            # screenshot: a correct class-1 pixel, a correct class-2, background
            pts = [(1 * 32 + 16, 1 * 32 + 16, MUTED[0]), (16, 2 * 32 + 16, MUTED[1]),
                   (3 * 32 + 16, 2 * 32 + 16, (255, 255, 255))]
            shot = check_shot_pixels(t, b, th, pts, "multiclass thumbnail")
            # the wrong pixel (0, 1), predicted class 2: inside its block (2 px margin) a
            # quarter of the screenshot's pixels are black, all on one diagonal residue
            # (x + y) % 4, the others class 2's colour
            x0, y0 = round(th["left"]), round(th["top"])
            black, plain, other, residues = 0, 0, [], set()
            for y in range(y0 + 2, y0 + 30):
                for x in range(x0 + 34, x0 + 62):
                    px = shot.pixel(x, y)
                    if png.near(px, BLACK, 6):
                        black += 1
                        residues.add((x + y) % 4)
                    elif png.near(px, MUTED[1], 6):
                        plain += 1
                    else:
                        other.append((x - x0, y - y0, px))
            t.check(not other and len(residues) == 1 and abs(black * 4 - (black + plain)) <= 28,
                    "multiclass screenshot: the wrong pixel is class 2's colour hatched black "
                    "on every 4th diagonal", f"{black} black, {plain} plain, residues "
                    f"{residues}, others {other[:3]}")
            if th["left"] == x0 and th["top"] == y0:
                t.check(residues == {(x0 + y0) % 4}, "multiclass screenshot: the hatch is on "
                        "thumbnail pixels with (x + y) % 4 == 0", repr(residues))
        legend = b.evaluate("[...document.querySelectorAll('.legend *')].map(e => "
                            "getComputedStyle(e).backgroundColor)")
        want = [f"rgb({r}, {g}, {b_})" for r, g, b_ in map(class_colour, range(3))]
        t.check(all(w in (legend or []) for w in want), "the legend shows the colours of "
                "classes 0, 1, 2 (white, #332288, #88CCEE)", repr(legend))
        no_problems(t, b, "multiclass report")


IMGS_JS = """[...document.querySelectorAll(
    'section#worst figure.thumb[data-index="%d"] img.overlay')]
  .map(i => ({src: i.getAttribute('src'), w: i.getAttribute('width'), h: i.getAttribute('height'),
              scale: i.dataset.scale, slice: i.dataset.slice, channel: i.dataset.channel}))"""


def overlay_of(t_, p_, ignore=None):
    """The contract's overlay of one 2-D image (numpy, [H, W] of 0/1): [H, W, 3] colours."""
    out = np.empty(t_.shape + (3,), np.uint8)
    for (tv, pv), col in (((1, 1), TP), ((0, 1), FP), ((1, 0), FN), ((0, 0), TN)):
        out[(t_ == tv) & (p_ == pv)] = col
    if ignore is not None:
        out[ignore] = png.hex_rgb("#BBBBBB")
    return out


def upscale(colours, u):
    return colours.repeat(u, axis=0).repeat(u, axis=1)


def decoded(img):
    return np.frombuffer(img.rgba, np.uint8).reshape(img.height, img.width, 4)[..., :3]


def report_imgs(t, b, ctx, body, what):
    """The img.overlay elements of image 0 in the report of body, each with .img decoded."""
    html = fetch_report(t, ctx, body, what)
    if html is None:
        return None
    b.set_content(html)
    imgs = b.evaluate(IMGS_JS % 0) or []
    for i in imgs:
        i["img"] = png.decode(base64.b64decode(i["src"].split(",", 1)[1]))
    no_problems(t, b, what)
    return imgs


def test_report_forms(t, ctx):
    """The contract's other thumbnail forms: a large image downsampled (errors never vanish),
    a 3-D image's slices, a multilabel image's channels, ignored pixels."""
    with cdp.Browser(1200, 900) as b:
        # -- 300x300: f = ceil(300 / 256) = 2, a 150x150 thumbnail, data-scale "1/2"
        tg = np.zeros((300, 300), np.uint8)
        pr = np.zeros((300, 300), np.uint8)
        tg[:40, :40] = pr[:40, :40] = 1  # TP blocks
        tg[101, 101] = 1  # a lone FN: its block is FN
        pr[201, 201] = 1  # a lone FP: its block is FP
        tg[150, 150] = pr[150, 150] = pr[150, 151] = 1  # TP + FP in one block: FP
        tg[250, 250] = pr[250, 251] = 1  # FN + FP in one block: FN
        body = {"prediction": [pr.tolist()], "target": [tg.tolist()],
                "prediction_type": "labels", "metrics": ["dice"]}
        imgs = report_imgs(t, b, ctx, body, "300x300 report")
        if imgs is not None and t.check(len(imgs) == 1, "300x300: one img", repr(len(imgs))):
            i = imgs[0]
            t.check(i["scale"] == "1/2" and (i["img"].width, i["img"].height) == (150, 150) and
                    i["w"] == "150", "300x300: downsampled by 2 to 150x150, data-scale 1/2",
                    repr({k: i[k] for k in ("w", "h", "scale")}))
            # each thumbnail pixel: FN if its 2x2 block has one, else FP, else TP, else TN
            blk = lambda m: m.reshape(150, 2, 150, 2).any(axis=(1, 3))  # noqa: E731
            fn = blk((tg == 1) & (pr == 0))
            fp = blk((tg == 0) & (pr == 1))
            tp = blk((tg == 1) & (pr == 1))
            want = np.empty((150, 150, 3), np.uint8)
            want[:] = TN
            want[tp] = TP
            want[fp] = FP
            want[fn] = FN
            got = decoded(i["img"]) if (i["img"].width, i["img"].height) == (150, 150) else None
            t.check(got is not None and (got == want).all() and tuple(got[50, 50]) == FN and
                    tuple(got[100, 100]) == FP and tuple(got[75, 75]) == FP and
                    tuple(got[125, 125]) == FN, "300x300: every thumbnail pixel by the block "
                    "rule (lone FN and FP pixels stay visible, FN over FP over TP)")
        # -- 3-D [1, 5, 4, 4], binary: middle slice 2, most errors slice 1 (3 FP; slice 3 has 1)
        tg = np.zeros((5, 4, 4), np.uint8)
        pr = np.zeros((5, 4, 4), np.uint8)
        tg[2, 1, 1] = pr[2, 1, 1] = 1  # middle slice: one TP
        pr[1, 0, 0] = pr[1, 0, 3] = pr[1, 3, 0] = 1  # slice 1: three FP
        tg[3, 2, 2] = 1  # slice 3: one FN
        body = {"prediction": [pr.tolist()], "target": [tg.tolist()], "mode": "binary",
                "prediction_type": "labels", "metrics": ["dice"]}
        imgs = report_imgs(t, b, ctx, body, "3-D report")
        if imgs is not None:
            by = {i.get("slice"): i for i in imgs}
            t.check(sorted(map(str, by)) == ["1", "2"], "3-D: the middle slice 2 and the "
                    "most-errors slice 1, each an img with data-slice", repr(list(by)))
            ok = all(z in by and (decoded(by[z]["img"]) == upscale(overlay_of(tg[int(z)],
                     pr[int(z)]), 32)).all() for z in ("1", "2"))
            t.check(ok, "3-D: each slice's thumbnail pixels are its TP/FP/FN/TN colours")
        # -- multilabel [1, 2, 4, 4]: one img per channel
        tg = np.zeros((2, 4, 4), np.uint8)
        pr = np.zeros((2, 4, 4), np.uint8)
        tg[0, 0, :2] = 1
        pr[0, 0, 1:3] = 1  # channel 0: TP (0,1), FN (0,0), FP (0,2)
        tg[1, 3, 3] = pr[1, 3, 3] = pr[1, 2, 2] = 1  # channel 1: TP (3,3), FP (2,2)
        body = {"prediction": [pr.tolist()], "target": [tg.tolist()], "mode": "multilabel",
                "prediction_type": "labels", "metrics": ["dice"]}
        imgs = report_imgs(t, b, ctx, body, "multilabel report")
        if imgs is not None:
            by = {i.get("channel"): i for i in imgs}
            t.check(sorted(map(str, by)) == ["0", "1"], "multilabel: one img per channel "
                    "(data-channel)", repr(list(by)))
            ok = all(c in by and (decoded(by[c]["img"]) == upscale(overlay_of(tg[int(c)],
                     pr[int(c)]), 32)).all() for c in ("0", "1"))
            t.check(ok, "multilabel: each channel's thumbnail pixels are its TP/FP/FN/TN colours")
        # -- ignore_index: the ignored pixel is #BBBBBB whatever the prediction
        tg = np.array(T0, np.uint8)
        pr = np.array(P0, np.uint8)
        tg[3, 3] = 255
        pr[3, 3] = 1
        body = {"prediction": [pr.tolist()], "target": [tg.tolist()], "ignore_index": 255,
                "prediction_type": "labels", "metrics": ["dice"]}
        imgs = report_imgs(t, b, ctx, body, "ignore_index report")
        if imgs is not None and t.check(len(imgs) == 1, "ignore_index: one img"):
            want = upscale(overlay_of(tg, pr, ignore=tg == 255), 32)
            t.check((decoded(imgs[0]["img"]) == want).all() and
                    tuple(decoded(imgs[0]["img"])[3 * 32 + 16, 3 * 32 + 16]) == (0xBB,) * 3,
                    "ignore_index: the ignored pixel #BBBBBB, the others TP/FP/FN/TN")


# ---- screenshots for the README ------------------------------------------------------------

# CSS pixels, device scale 1: the challenge page wide enough for its whole table (narrower,
# the table scrolls sideways in its box and a screenshot cuts it)
SHOT_WIDTH = {"challenge.png": 1200, "report.png": 900}


def save_shot(b, path, width):
    """A full-page PNG of the current page at width CSS pixels (at most 1400 tall)."""
    b.call("Emulation.setDeviceMetricsOverride", width=width, height=700, deviceScaleFactor=1,
           mobile=False)
    b.evaluate("window.scrollTo(0, 0)")
    b.settle()
    h = min(1400, b.evaluate("document.documentElement.scrollHeight"))
    data = b.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                  clip={"x": 0, "y": 0, "width": width, "height": h, "scale": 1})["data"]
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))


def test_docs_shots(t, ctx):
    """The README's pictures (only with SEGLOSS_DOCS_SHOTS): a challenge of six 32x32 discs
    with five participants improving over three rounds, and a report."""
    env = ctx.env
    yy, xx = np.mgrid[:32, :32]
    disc = lambda cy, cx, r: ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)  # noqa
    rng = np.random.default_rng(2027)
    ids = [f"case-{i}" for i in range(6)]
    geo = [(rng.integers(12, 20), rng.integers(12, 20), rng.integers(6, 11)) for _ in ids]
    ref = np.stack([disc(*g) for g in geo])
    cfg = dict(tc.CONFIG, title="Discs 2027", split={"public_ids": ids[:3]},
               description="Six 32x32 discs; the public board scores three of them.\n"
                           "Ranked by mean Dice.")
    a = env.call("PUT", "/v1/challenges/discs-2027", cfg, env.admin)
    a = env.call("PUT", "/v1/challenges/discs-2027/reference", tc.stacked(ref, ids, "target"),
                 env.admin)
    t.check(a.status == 201, "docs: the reference", a.raw[:200])
    names = ("unet-baseline", "deeplab-v3", "segformer-b2", "mask-rcnn", "otsu-threshold")
    tokens = {p: env.call("POST", "/v1/challenges/discs-2027/participants", {"name": p},
                          env.admin).json["token"] for p in names}
    for round_ in range(3):
        for i, p in enumerate(names):
            # shifted by i + 2 - round pixels and a little small: better each round
            off = i + 2 - round_
            pred = np.stack([disc(cy + off, cx + off // 2, max(2, r - off // 3))
                             for cy, cx, r in geo])
            env.call("POST", "/v1/challenges/discs-2027/submissions",
                     tc.stacked(pred, ids, "prediction", f"round {round_ + 1}"), tokens[p])
        time.sleep(4)  # the rounds apart on the chart's time axis
    with cdp.Browser(SHOT_WIDTH["challenge.png"], 700) as b:
        b.navigate(env.url + "/challenges/discs-2027")
        save_shot(b, os.path.join(ctx.shots, "challenge.png"), SHOT_WIDTH["challenge.png"])
        no_problems(t, b, "docs challenge page")
    # a report of four 96x96 discs, each prediction a little off (shifted, grown, shrunk)
    yy, xx = np.mgrid[:96, :96]
    disc = lambda cy, cx, r: ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)  # noqa
    targets = [disc(48, 48, 30), disc(40, 56, 22), disc(50, 44, 34), disc(48, 48, 16)]
    preds = [disc(52, 50, 30), disc(40, 56, 27), disc(50, 44, 28), disc(30, 70, 14)]
    body = {"prediction": [p.tolist() for p in preds], "target": [x.tolist() for x in targets],
            "prediction_type": "labels", "losses": ["dice"],
            "metrics": ["dice", "iou", {"name": "hausdorff", "percentile": 95, "as": "hd95"}]}
    html = fetch_report(t, ctx, body, "docs report")
    if html is not None:
        with cdp.Browser(SHOT_WIDTH["report.png"], 700) as b:
            b.set_content(html)
            save_shot(b, os.path.join(ctx.shots, "report.png"), SHOT_WIDTH["report.png"])
            no_problems(t, b, "docs report")
    for name in ("challenge.png", "report.png"):
        path = os.path.join(ctx.shots, name)
        if t.check(os.path.exists(path), f"saved {path}"):
            with open(path, "rb") as f:
                img = png.decode(f.read())
            t.check(img.width == SHOT_WIDTH[name], f"{name}: {img.width}x{img.height}")
            not_blank(t, img, name)


# ---- the runner -------------------------------------------------------------------------------


class Ctx:
    def __init__(self, seglossd, shots):
        self.seglossd = seglossd
        self.shots = shots
        self.tmp = tempfile.mkdtemp(prefix="segloss-browser-test-")
        self._env = None

    @property
    def env(self):
        if self._env is None:
            self._env = tc.Env(self.seglossd)
        return self._env

    def close(self):
        code = None
        if self._env is not None:
            code = self._env.stop()
            shutil.rmtree(self._env.dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code


def test_phone(t, ctx):
    """The pages on a phone: in Chromium's mobile emulation at 390 x 844 CSS pixels (the
    viewport meta honoured), the page itself never scrolls sideways; a wide table scrolls
    inside its own box, and the text keeps a readable size."""
    env = ctx.env
    env.setup("phone", dict(tc.CONFIG, title="A challenge seen on a phone"),
              participants=("a-participant-with-a-long-name", "b"))
    html = fetch_report(t, ctx, BINARY, "phone")
    path = os.path.join(ctx.tmp, "report-phone.html")
    with open(path, "w") as f:
        f.write(html or "")
    fit_js = """({page: document.documentElement.scrollWidth, view: window.innerWidth,
        font: parseFloat(getComputedStyle(document.body).fontSize),
        wide: [...document.querySelectorAll('table')].filter(tb =>
            tb.getBoundingClientRect().width > window.innerWidth).map(tb =>
            getComputedStyle(tb.parentElement).overflowX)})"""
    with cdp.Browser(390, 844) as b:
        b.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
               deviceScaleFactor=1, mobile=True)
        for what, url in (("the list", env.url + "/challenges"),
                          ("a challenge page", env.url + "/challenges/phone"),
                          ("the report", "file://" + path)):
            b.navigate(url)
            fit = b.evaluate(fit_js)
            t.check(fit["view"] == 390 and fit["page"] <= fit["view"],
                    f"phone: {what} is no wider than the screen (390 CSS px)", repr(fit))
            t.check(all(o == "auto" for o in fit["wide"]),
                    f"phone: {what}: a table wider than the screen scrolls in its own box",
                    repr(fit["wide"]))
            t.check(fit["font"] >= 14, f"phone: {what}: body text of at least 14 px", repr(fit))
            no_problems(t, b, f"phone: {what}")


TESTS = [test_harness_websocket, test_harness_png, test_harness_problems, test_harness_cli,
         test_pages, test_report_binary, test_report_multiclass, test_report_forms, test_phone]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    args = ap.parse_args()
    t = harness.Tally("browser")
    shots = os.environ.get("SEGLOSS_DOCS_SHOTS") or None
    if shots:
        os.makedirs(shots, exist_ok=True)
    if not cdp.chromium_path():
        t.check(False, "chromium is installed", "no /usr/bin/chromium (Debian: apt-get install "
                "chromium), or set SEGLOSS_CHROMIUM")
        return t.finish()
    ctx = Ctx(args.seglossd, shots)
    start = time.monotonic()
    try:
        for fn in TESTS + ([test_docs_shots] if shots else []):
            if harness.selected("browser/" + fn.__name__[5:]):
                t0 = time.monotonic()
                run(t, fn, ctx)
                t.info(f"{fn.__name__[5:]}: {time.monotonic() - t0:.1f} s")
    finally:
        code = ctx.close()
    if code is not None:
        t.check(code == 0, "seglossd stopped cleanly (exit 0)", f"exit status {code}")
    t.info(f"browser suite: {time.monotonic() - start:.1f} s")
    return t.finish()


def run(t, fn, *args):
    try:
        fn(t, *args)
    except Exception as e:  # a test that raises fails, the others still run
        import traceback
        traceback.print_exc()
        t.check(False, fn.__name__ + " ran to its end", repr(e))


if __name__ == "__main__":
    sys.exit(main())
