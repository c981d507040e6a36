#!/usr/bin/python3
"""Check that seglossd and pyservice.py answer the same numbers before timing them.

Usage: /usr/bin/python3 check.py SEGLOSS_URL PYTHON_URL TOL BODY.json...

POSTs every body to both /v1/score endpoints and compares every number the two answers have
in common: losses[k].value and per_image, metrics[k].mean, global and per_image, plus
images/shape. A missing key on either side is a failure too (it would mean the two do not
compute the same set). A benchmark of two services that disagree compares nothing, so any
difference above TOL (absolute) fails loudly with the key path and both values. Prints the
largest difference seen per body, and seglossd's own elapsed_ms for reference.
Exit status 0 when all agree, 1 otherwise.
"""
import json
import math
import sys
import urllib.error
import urllib.request


def post(url, body):
    req = urllib.request.Request(url + "/v1/score", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"check: {url} answered {e.code}: {e.read()[:500]!r}")


def leaves(ans):
    """Flatten the comparable part of an answer to {path: number}."""
    out = {"images": ans["images"]}
    for i, v in enumerate(ans["shape"]):
        out[f"shape[{i}]"] = v
    for k, v in ans["losses"].items():
        out[f"losses.{k}.value"] = v["value"]
        for i, x in enumerate(v.get("per_image", [])):
            out[f"losses.{k}.per_image[{i}]"] = x
    for k, v in ans["metrics"].items():
        for f in ("mean", "global"):
            out[f"metrics.{k}.{f}"] = v[f]
        for i, x in enumerate(v.get("per_image", [])):
            out[f"metrics.{k}.per_image[{i}]"] = x
    return out


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    seg_url, py_url, tol, bodies = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    ok = True
    for path in bodies:
        with open(path, "rb") as f:
            body = f.read()
        a, b = post(seg_url, body), post(py_url, body)
        la, lb = leaves(a), leaves(b)
        name = path.rsplit("/", 1)[-1]
        if la.keys() != lb.keys():
            ok = False
            print(f"check: {name}: keys differ: only seglossd {sorted(la.keys() - lb.keys())}, "
                  f"only python {sorted(lb.keys() - la.keys())}")
        worst, worst_key = 0.0, None
        for k in sorted(la.keys() & lb.keys()):
            x, y = la[k], lb[k]
            d = math.inf if (x is None) != (y is None) else (0.0 if x is None else abs(x - y))
            if d > worst:
                worst, worst_key = d, k
            if not d <= tol:
                ok = False
                print(f"check: MISMATCH {name} {k}: seglossd {x!r} python {y!r} (|diff| {d:.3g})")
        summary = ", ".join(f"{k.split('.')[0][0]}.{k.split('.')[1]} {la[k]:.6f}"
                            for k in la if k.endswith(".value") or k.endswith(".mean"))
        print(f"check: {name}: {len(la)} numbers, max |diff| {worst:.2e}"
              f"{' at ' + worst_key if worst_key else ''}; seglossd elapsed_ms "
              f"{a.get('elapsed_ms')}, python elapsed_ms {b.get('elapsed_ms', 0):.3f}")
        print(f"check:   values: {summary}")
    if not ok:
        print(f"check: FAILED: the two services disagree by more than {tol}", file=sys.stderr)
        return 1
    print(f"check: both services agree within {tol} on every number")
    return 0


if __name__ == "__main__":
    sys.exit(main())
