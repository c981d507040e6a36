"""test_pages.py - the leaderboard pages (GET /challenges, GET /challenges/{c}; their structure:
docs/html.md) over real HTTP against a real seglossd on a temporary data directory.

Each page is parsed with Python's html.parser into a small tree and compared with what the JSON
routes answer to an anonymous reader: the same rows, ranks, participants, notes and entries, each
score's data-value equal to the JSON number, the shown value its 4 significant digits (Python's
'%.4g', the C printf rule). An organiser's title and description and participants' notes full of
markup stay text: no element or attribute of theirs exists in the page. The private table is
absent until the reveal, the re-score's progress shows while one runs, the list page links each
challenge, unknown challenges and challenges off are 404s (HTML, or problem+json when asked),
and HEAD answers the headers.

Each test is "pages/NAME" (NAME: the function without test_) for make test T=PATTERN.
Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
import harness  # noqa: E402  (tests/clients/harness.py)
import test_challenges as tc  # noqa: E402  (its fixture, reference and predictions)

# ---- a small DOM -------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.attr_list = list(attrs)
        self.parent = parent
        self.children = []  # Nodes and strings

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag=None, **attrs):
        """Descendants with tag (None: any) whose attributes equal attrs (class_: one of the
        classes)."""
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            ok = True
            for k, v in attrs.items():
                if k == "class_":
                    ok = ok and v in (n.attrs.get("class") or "").split()
                else:
                    ok = ok and n.attrs.get(k.replace("_", "-")) == v
            if ok:
                out.append(n)
        return out

    def find(self, tag=None, **attrs):
        found = self.find_all(tag, **attrs)
        return found[0] if found else None


class Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.cur = self.root
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(body):
    p = Tree()
    p.feed(body.decode("utf-8"))
    p.close()
    return p


# What the pages may contain: anything else (an <img>, a <b>) came from someone's string.
ALLOWED = {"html", "head", "meta", "link", "title", "style", "body", "p", "a", "code", "h1", "h2", "dl",
           "dt", "dd", "time", "div", "table", "thead", "tbody", "tr", "th", "td", "span",
           "progress", "svg", "g", "line", "text", "path", "script", "footer"}


def get(url, path, method="GET", accept=None, token=None):
    headers = {}
    if accept:
        headers["Accept"] = accept
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url + path, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return tc.Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return tc.Answer(e.code, e.headers, e.read())


def shown4(v):
    """A score as the page shows it: 4 significant digits (printf %.4g), an en dash for null."""
    return "\u2013" if v is None else ("0" if v == 0 else "%.4g" % v)


def check_safe(t, tree, what):
    """No element or attribute beyond the page's own: the hostile strings stayed text."""
    tags = {n.tag for n in tree.root.iter()}
    t.check(tags <= ALLOWED, f"{what}: only the page's own elements", repr(tags - ALLOWED))
    on = [(n.tag, k) for n in tree.root.iter() for k, _ in n.attr_list if k.startswith("on")]
    t.check(not on, f"{what}: no event-handler attribute", repr(on))
    scripts = tree.root.find_all("script")
    t.check(all(not s.attr_list for s in scripts) and len(scripts) <= 1,
            f"{what}: at most the one inline sorting script, without attributes",
            repr([s.attr_list for s in scripts]))
    icons = [n for n in tree.root.find_all("link")]
    t.check(len(icons) == 1 and icons[0].attrs == {"rel": "icon", "href": "data:,"},
            f"{what}: one <link>, the empty icon (no request for /favicon.ico)",
            repr([n.attrs for n in icons]))
    links = [n.attrs.get("href") or n.attrs.get("src") for n in tree.root.iter()
             if ("href" in n.attrs or "src" in n.attrs) and n not in icons]
    t.check(all(h and h.startswith("/") for h in links), f"{what}: links only to the server's "
            "own paths, no external asset", repr(links))
    t.check((tree.doctype or "").lower() == "doctype html", f"{what}: <!DOCTYPE html>",
            repr(tree.doctype))


def check_board(t, tree, table_id, doc, what):
    """table#table_id against the JSON leaderboard doc: columns, then row by row."""
    table = tree.root.find("table", id=table_id)
    if not t.check(table is not None, f"{what}: table#{table_id} exists"):
        return
    ths = [th for th in table.find("thead").find_all("th") if "data-key" in th.attrs]
    want_cols = [(c["key"], c["order"]) for c in doc["columns"]]
    t.check([(th.attrs["data-key"], th.attrs.get("data-order")) for th in ths] == want_cols,
            f"{what}: one th per column with its key and order", repr([th.attrs for th in ths]))
    t.check(all(("higher is better" if th.attrs.get("data-order") == "desc" else
                 "lower is better") in th.text() for th in ths),
            f"{what}: each column says whether higher or lower is better",
            repr([th.text() for th in ths]))
    trs = table.find("tbody").find_all("tr")
    t.check(len(trs) == len(doc["rows"]), f"{what}: {len(doc['rows'])} rows as the JSON",
            f"{len(trs)} rows")
    bad = []
    for tr, row in zip(trs, doc["rows"]):
        tds = tr.find_all("td")
        score = {td.attrs.get("data-key"): td for td in tr.find_all("td", class_="score")}
        sub = tr.find("td", class_="submitted")
        tm = sub.find("time") if sub else None
        ok = (tr.attrs.get("data-participant") == row["participant"] and
              tr.attrs.get("data-rank") == str(row["rank"]) and
              tds[0].attrs.get("class") == "rank" and tds[0].text() == str(row["rank"]) and
              tr.find("td", class_="participant").text() == row["participant"] and
              tr.find("td", class_="note").text() == row["note"] and
              tr.find("td", class_="entries").text() == str(row["entries"]) and
              tm is not None and tm.attrs.get("datetime") == row["submitted_at"] and
              ("stale" in (tr.attrs.get("class") or "").split()) == row["stale"] and
              list(score) == [c["key"] for c in doc["columns"]])
        for key, want in row["scores"].items():
            td = score.get(key)
            dv = td.attrs.get("data-value") if td else None
            ok = ok and td is not None and (
                (want is None and dv == "null") or
                (want is not None and dv not in (None, "null") and float(dv) == want))
            ok = ok and td is not None and td.text() == shown4(want)
        if not ok:
            bad.append((tr.attrs, [td.text() for td in tds], row))
    t.check(not bad, f"{what}: every row equals the JSON row (rank, participant, note, exact "
            "data-value and 4 digits shown, entries, time, stale)", repr(bad[:2])[:600])


# ---- tests ---------------------------------------------------------------------------------

HOSTILE_TITLE = "<script>alert(1)</script> & \"Squares\" 'quoted'"
HOSTILE_DESC = "first line\n\"><img src=x onerror=alert(1)>\n<b>bold</b> &amp; <!-- c -->"
NOTES = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
         "' onmouseover='alert(1)", "&lt;b&gt; & <svg onload=alert(1)>"]


def hostile_config(**extra):
    return dict(tc.CONFIG, title=HOSTILE_TITLE, description=HOSTILE_DESC, **extra)


def test_off(t, seglossd):
    srv = harness.Server(seglossd)
    try:
        for path in ("/challenges", "/challenges/squares"):
            a = get(srv.url, path)
            t.check(a.status == 404 and a.headers.get("Content-Type", "").startswith("text/html")
                    and b"--data-dir" in a.raw, f"{path} without --data-dir: an HTML 404 naming "
                    "the flag", a.raw[-300:])
            a = get(srv.url, path, accept="application/json")
            t.check(a.status == 404 and "problem+json" in a.headers.get("Content-Type", "") and
                    "--data-dir" in a.detail(), f"{path} asking for JSON: problem+json 404",
                    a.raw[:300])
    finally:
        srv.stop()


def test_page(t, env):
    tokens = env.setup("hostile", hostile_config(),
                       participants=("team-a", "team-b", "team-c", "team-d", "team-e"))
    # team-a: 1 then 0 (better: its row); b: 2; c: 0 (ties a on Dice); d: 3; e: nothing scored
    plan = [("team-a", 1, ""), ("team-b", 2, NOTES[1]), ("team-c", 0, NOTES[2]),
            ("team-a", 0, NOTES[3]), ("team-d", 3, NOTES[0])]
    for who, k, note in plan:
        a = env.submit("hostile", tokens[who], tc.shifted(k), note=note)
        t.check(a.status == 201, f"{who} submits (shift {k})", a.raw[:200])
    page = get(env.url, "/challenges/hostile")
    t.check(page.status == 200, "GET /challenges/hostile: 200", page.raw[:200])
    t.check(page.headers.get("Content-Type") == "text/html; charset=utf-8", "Content-Type "
            "text/html; charset=utf-8", page.headers.get("Content-Type"))
    t.check(page.headers.get("Cache-Control") == "no-cache", "Cache-Control: no-cache",
            page.headers.get("Cache-Control"))
    tree = parse(page.raw)
    check_safe(t, tree, "challenge page")
    h1 = tree.root.find("h1")
    t.check(h1 is not None and h1.text() == HOSTILE_TITLE, "h1 is the title, as text",
            h1.text() if h1 else None)
    title = tree.root.find("title")
    t.check(title is not None and title.text() == HOSTILE_TITLE, "<title> is the title, as text")
    d = tree.root.find("p", class_="description")
    t.check(d is not None and d.text() == HOSTILE_DESC, "the description, as text with its "
            "newlines", d.text() if d else None)
    for note in NOTES:
        t.check(any(td.text() == note for td in tree.root.find_all("td", class_="note")),
                f"the note {note!r} shows as text")
    js = env.call("GET", "/v1/challenges/hostile/leaderboard")
    check_board(t, tree, "public", js.json, "public")
    # the rules: window, quota, the reset at the next midnight UTC
    rules = tree.root.find("dl", id="rules")
    t.check(rules is not None and "100 scored submissions" in rules.text() and
            "keep" in rules.text().lower() and "final selections" in rules.text().lower(),
            "dl#rules: the quota, keep and final selections", rules.text() if rules else None)
    reset = rules.find("dd", class_="reset") if rules else None
    tm = reset.find("time") if reset else None
    now = datetime.now(timezone.utc)
    midnights = {(now + timedelta(days=k)).strftime("%Y-%m-%dT00:00:00Z") for k in (1, 0)}
    t.check(tm is not None and tm.attrs.get("datetime") in midnights, "the daily count resets "
            "at the next midnight UTC", tm.attrs if tm else None)
    t.check(tree.root.find("table", id="private") is None, "no private table before the reveal")
    t.check(tree.root.find("progress", id="rescore") is None, "no re-score progress when none "
            "runs")
    # the chart: one series per participant with a public value, in rank order (top 10)
    svg = tree.root.find("svg", id="history")
    paths = [p.attrs.get("data-participant") for p in (svg.find_all("path", class_="series")
                                                      if svg else [])]
    ranked = [r["participant"] for r in js.json["rows"]][:10]
    t.check(svg is not None and paths == ranked, "svg#history: a series per top participant in "
            "rank order", repr((paths, ranked)))
    legend = svg.find("g", class_="legend") if svg else None
    t.check(legend is not None and all(p in legend.text() for p in ranked), "the chart has a "
            "legend naming them")
    # team-a's best-so-far: shift 1 then shift 0 (higher Dice): a step up, two points
    pa = svg.find("path", data_participant="team-a") if svg else None
    dpath = pa.attrs.get("d", "") if pa else ""
    t.check(dpath.count("V") == 1 and dpath.startswith("M"), "team-a's series steps once (its "
            "second submission beat its first)", dpath)
    # a token changes nothing: the page is what an anonymous reader sees
    a = get(env.url, "/challenges/hostile", token=env.admin)
    t.check(a.status == 200 and parse(a.raw).root.find("table", id="private") is None,
            "the admin's token does not show the private table before the reveal")
    a = get(env.url, "/challenges/hostile", token="not-a-token")
    t.check(a.status == 200, "a bad token is ignored (pages read none)", a.status)
    # the reveal
    a = env.call("PUT", "/v1/challenges/hostile", hostile_config(private_visible=True), env.admin)
    t.check(a.status == 200, "reveal: private_visible true", a.raw[:200])
    tree = parse(get(env.url, "/challenges/hostile").raw)
    priv = env.call("GET", "/v1/challenges/hostile/leaderboard?split=private")
    t.check(priv.status == 200, "the private JSON is public after the reveal", priv.raw[:200])
    check_board(t, tree, "private", priv.json, "private")
    check_board(t, tree, "public", env.call("GET", "/v1/challenges/hostile/leaderboard").json,
                "public after the reveal")
    check_safe(t, tree, "challenge page after the reveal")


def test_list(t, env):
    env.call("PUT", "/v1/challenges/listed", hostile_config(), env.admin)
    a = get(env.url, "/challenges")
    t.check(a.status == 200 and a.headers.get("Content-Type") == "text/html; charset=utf-8" and
            a.headers.get("Cache-Control") == "no-cache", "GET /challenges: 200 HTML, no-cache",
            a.raw[:200])
    tree = parse(a.raw)
    check_safe(t, tree, "list page")
    table = tree.root.find("table", id="challenges")
    names = [tr.attrs.get("data-challenge") for tr in (table.find_all("tr") if table else [])
             if "data-challenge" in tr.attrs]
    js = env.call("GET", "/v1/challenges")
    t.check(names == [c["name"] for c in js.json["challenges"]], "one row per challenge, as the "
            "JSON list", repr(names))
    tr = table.find("tr", data_challenge="listed") if table else None
    link = tr.find("a") if tr else None
    t.check(link is not None and link.attrs.get("href") == "/challenges/listed", "a link to its "
            "page", link.attrs if link else None)
    cell = tr.find("td", class_="title") if tr else None
    t.check(cell is not None and cell.text() == HOSTILE_TITLE, "the title, as text",
            cell.text() if cell else None)


def test_errors(t, env):
    a = get(env.url, "/challenges/nope")
    t.check(a.status == 404 and a.headers.get("Content-Type", "").startswith("text/html") and
            b"no challenge" in a.raw, "an unknown challenge: an HTML 404", a.raw[-200:])
    check_safe(t, parse(a.raw), "404 page")
    for accept in ("application/json", "application/problem+json"):
        a = get(env.url, "/challenges/nope", accept=accept)
        t.check(a.status == 404 and "problem+json" in a.headers.get("Content-Type", "") and
                "nope" in a.detail(), f"Accept: {accept}: a problem+json 404", a.raw[:200])
    a = get(env.url, "/challenges/nope", accept="text/html,application/json;q=0.9")
    t.check(a.status == 404 and a.headers.get("Content-Type", "").startswith("text/html"),
            "a browser's Accept: the HTML 404")
    a = get(env.url, "/challenges/Bad_Name")
    t.check(a.status == 404, "a name outside the pattern: 404", a.status)
    a = get(env.url, "/challenges/%3Cscript%3E")
    t.check(a.status == 404 and not (a.headers.get("Content-Type", "").startswith("text/html")
                                     and b"<script>" in a.raw),
            "a markup name: 404 (the router's), never HTML with the markup", a.raw[-200:])
    a = get(env.url, "/challenges", method="POST")
    t.check(a.status == 405, "POST /challenges: 405", a.status)
    env.call("PUT", "/v1/challenges/headed", tc.CONFIG, env.admin)
    g = get(env.url, "/challenges/headed")
    h = get(env.url, "/challenges/headed", method="HEAD")
    t.check(h.status == 200 and h.raw == b"" and h.headers.get("Content-Type") ==
            "text/html; charset=utf-8" and h.headers.get("Cache-Control") == "no-cache",
            "HEAD /challenges/headed: 200, the headers, no body", h.headers.items())
    t.check(h.headers.get("Content-Length") == str(len(g.raw)), "HEAD's Content-Length is the "
            "page's", (h.headers.get("Content-Length"), len(g.raw)))
    h = get(env.url, "/challenges", method="HEAD")
    t.check(h.status == 200 and h.raw == b"", "HEAD /challenges: 200, no body", h.status)
    h = get(env.url, "/challenges/nope", method="HEAD")
    t.check(h.status == 404, "HEAD of an unknown challenge: 404", h.status)


def test_rescore_progress(t, seglossd):
    """A re-score of some hundreds of stored submissions (copies of one, written while seglossd
    is stopped, as tests/bench/challenge_bench.py does) runs long enough to be seen."""
    env = tc.Env(seglossd)
    try:
        tokens = env.setup("rsp", participants=("team-a",))
        a = env.submit("rsp", tokens["team-a"], tc.shifted(1), note="first")
        sub = a.json["id"]
        env.stop()
        db = sqlite3.connect(os.path.join(env.dir, "segloss.db"))
        row = db.execute("SELECT * FROM submissions WHERE id = ?", (sub,)).fetchone()
        cols = [c[1] for c in db.execute("PRAGMA table_info(submissions)")]
        ix = {c: i for i, c in enumerate(cols)}
        rows = []
        for k in range(400):
            r = list(row)
            r[ix["seq"]] = None
            r[ix["id"]] = os.urandom(8).hex()
            r[ix["received_at"]] = row[ix["received_at"]] - (k + 1) * 1000000
            rows.append(r)
        db.executemany(f"INSERT INTO submissions VALUES ({','.join('?' * len(cols))})", rows)
        db.commit()
        db.close()
        env.start()
        a = env.call("POST", "/v1/challenges/rsp/rescore", token=env.admin)
        t.check(a.status == 202 and a.json.get("total") == 401, "a re-score of 401", a.raw[:200])
        page = get(env.url, "/challenges/rsp")
        prog = env.call("GET", "/v1/challenges/rsp/rescore", token=env.admin).json or {}
        tree = parse(page.raw)
        p = tree.root.find("progress", id="rescore")
        if p is None and prog.get("done", 0) + prog.get("failed", 0) >= prog.get("total", 0):
            t.skip("the re-score ended before the page was read")
        else:
            v, m = p.attrs.get("value"), p.attrs.get("max") if p else (None, None)
            t.check(p is not None and m == "401" and v is not None and 0 <= int(v) <= 401,
                    "progress#rescore while it runs: value <= max = 401", p.attrs if p else None)
            para = p.parent if p else None
            t.check(para is not None and f"re-scoring {v} of {m}" in para.text(),
                    "it says 're-scoring D of T'", para.text() if para else None)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            prog = env.call("GET", "/v1/challenges/rsp/rescore", token=env.admin).json or {}
            if prog.get("done", 0) + prog.get("failed", 0) >= 401:
                break
            time.sleep(0.2)
        tree = parse(get(env.url, "/challenges/rsp").raw)
        t.check(prog.get("done") == 401 and tree.root.find("progress", id="rescore") is None,
                "once it is over, no progress shows", repr(prog))
    finally:
        env.stop()


TESTS_ENV = [test_page, test_list, test_errors]
TESTS_ALONE = [test_off, test_rescore_progress]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    args = ap.parse_args()
    t = harness.Tally("pages")
    want = {fn: harness.selected("pages/" + fn.__name__[5:]) for fn in TESTS_ENV + TESTS_ALONE}
    if any(want[fn] for fn in TESTS_ENV):
        env = tc.Env(args.seglossd)
        try:
            for fn in TESTS_ENV:
                if want[fn]:
                    tc.run(t, fn, env)
        finally:
            code = env.stop()
        t.check(code == 0, "seglossd stopped cleanly (exit 0; 99 under make valgrind: errors)",
                f"exit status {code}")
    for fn in TESTS_ALONE:
        if want[fn]:
            tc.run(t, fn, args.seglossd)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
