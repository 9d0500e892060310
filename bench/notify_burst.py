"""A burst of 10,000 alerts through the notification receiver, on this host, one run.

Why: when a whole pool goes bad at once (a switch, a driver push), Alertmanager delivers
thousands of alerts within seconds. The receiver must accept them fast (each webhook is committed
to the SQLite outbox before its 200), and deliver them grouped, to every target, without losing
or duplicating one. Goals (issue 5): accept >= 1,000 alerts/s; the whole burst delivered < 60 s.

How: `poolwatch alerts serve` runs as its own process (so its RSS is its own), with two targets:
mail to a real SMTP server (aiosmtpd, in this process) and json:// to a real HTTP sink (this
process). 100 Alertmanager-shaped webhook payloads of 100 alerts each (severities mixed) are
posted by 4 client threads. `accept` is from the first POST to the last 200; `delivered` is from
the first POST until /status reports every delivery sent; lost/duplicated are counted from what
the SMTP server and the sink received (each alert names its own node). The shipped defaults
apply except `group_max: 500` (one message per 500 alerts) and the default rate limit (30
messages per minute per target) stays on. `rss_peak_mb` is the receiver's VmHWM.
Writes bench/results/notify_burst.txt; exit status 0 when every goal passes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from alerts_support import HttpSink, SmtpSink, alert  # noqa: E402
from helpers import free_port  # noqa: E402

from poolwatch.alerts.payload import webhook  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 (a local test credential)


def _get(url: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
        return resp.status


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(payloads: int, per_payload: int, clients: int, tmp: Path) -> dict:
    smtp, hook = SmtpSink(free_port()), HttpSink()
    smtp.start()
    port = free_port()
    (tmp / "token").write_text(TOKEN)
    cfg = tmp / "alerts.yaml"
    cfg.write_text(f"""
listen: 127.0.0.1:{port}
cluster_name: bench
outbox: {tmp / "outbox.sqlite"}
auth: {{bearer_token_file: {tmp / "token"}}}
max_body_bytes: 16777216
group_max: 500
targets:
  - {{name: mail, url: "{smtp.url()}"}}
  - {{name: chat, url: "{hook.url()}"}}
""")
    log = (tmp / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "poolwatch", "alerts", "serve", "--config", str(cfg),
         "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit((tmp / "receiver.log").read_text()) from None
                time.sleep(0.1)
        total = payloads * per_payload
        sev = ("critical", "warning", "info")
        bodies = [
            json.dumps(webhook([alert(i, sev[i % 3]) for i in range(k, k + per_payload)])).encode()
            for k in range(0, total, per_payload)
        ]
        t0 = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            codes = list(pool.map(lambda b: _post(base + "/alertmanager", b), bodies))
        accepted_s = time.monotonic() - t0
        if codes != [200] * payloads:
            raise SystemExit(f"webhook answers: {Counter(codes)}")
        while True:
            status = _get(base + "/status")
            if status["total"]["sent"] + status["total"]["dead"] >= 2 * total:
                break
            if time.monotonic() - t0 > 300:
                break
            time.sleep(0.1)
        delivered_s = time.monotonic() - t0
        rss = _rss_peak_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    mails = smtp.snapshot()
    mail_nodes = Counter(n for m in mails for n in re.findall(r"<td>(node-\d+)</td>", m.html))
    hook_nodes = Counter(
        n for b in hook.bodies for n in re.findall(r" on (node-\d+) \(pool", b["message"])
    )
    smtp.stop()
    hook.close()
    expected = {f"node-{i}" for i in range(total)}
    return {
        "alerts": total, "payloads": payloads, "clients": clients,
        "accepted_per_s": total / accepted_s, "accept_s": accepted_s,
        "delivered_s": delivered_s, "rss_peak_mb": rss,
        "mail_messages": len(mails), "webhook_messages": len(hook.bodies),
        "mail_lost": len(expected - set(mail_nodes)),
        "mail_duplicated": sum(c - 1 for c in mail_nodes.values() if c > 1),
        "webhook_lost": len(expected - set(hook_nodes)),
        "webhook_duplicated": sum(c - 1 for c in hook_nodes.values() if c > 1),
        "dead": status["total"]["dead"],
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--payloads", type=int, default=100)
    ap.add_argument("--per-payload", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/notify_burst.txt")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.payloads, args.per_payload, args.clients, Path(tmp))
    goals = {
        "accept >= 1000 alerts/s": r["accepted_per_s"] >= 1000,
        "whole burst delivered < 60 s": r["delivered_s"] < 60,
        "zero lost, zero duplicated, zero dead": not any(
            r[k] for k in ("mail_lost", "mail_duplicated", "webhook_lost",
                           "webhook_duplicated", "dead")),
    }  # fmt: skip
    lines = [
        f"notify_burst on {platform.node()} ({os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"burst: {r['alerts']} alerts in {r['payloads']} Alertmanager webhook payloads, "
        f"{r['clients']} client threads; targets: mail (aiosmtpd) + json:// (HTTP sink)",
        f"accepted: {r['accepted_per_s']:.0f} alerts/s ({r['accept_s']:.2f} s for the burst)",
        f"delivered end to end: {r['delivered_s']:.2f} s ({r['mail_messages']} mails, "
        f"{r['webhook_messages']} webhook posts)",
        f"receiver peak RSS: {r['rss_peak_mb']:.1f} MiB",
        f"lost: mail {r['mail_lost']}, webhook {r['webhook_lost']}; duplicated: mail "
        f"{r['mail_duplicated']}, webhook {r['webhook_duplicated']}; dead {r['dead']}",
        *[f"goal {'PASS' if ok else 'FAIL'}: {name}" for name, ok in goals.items()],
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
