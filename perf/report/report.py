#!/usr/bin/python3
"""Turns a run's latest.json into the Markdown table and the charts.

    perf/report/report.py [JSON]            table and charts again, beside JSON
                                            (default perf/results/tmp/latest.json,
                                            the last perf/run)
    perf/report/report.py --publish [JSON]  the maintainer's step: JSON, a full run
                                            of every scenario (default
                                            perf/results/tmp/latest.json), becomes
                                            the committed result, perf/results/
                                            latest.json, latest.md and charts, and
                                            its table replaces README.md's

Only --publish (or JSON inside perf/results/ itself) writes files that git
tracks; perf/run --publish calls it after a full run.

Table: one row per measured quantity, one column per runtime (median of the
runs), then how zokio compares: "vs best peer" and "vs asio_epoll" are
speed-up factors, > 1 means zokio is better (for lower-is-better rows
peer / zokio, for higher-is-better rows zokio / peer). liburing_raw is not a
peer: it stands for the hardware limit, so it has a column of its own.

Charts: one PNG per row group (grouped bars, one bar per runtime), drawn with
gnuplot when it is installed.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

RUNTIMES = ["zokio", "zokio_epoll", "zokio_kqueue", "zokio_no_cached_reads", "zokio_lockfree", "zokio_provided",
            "zokio_each", "asio_epoll", "asio_uring",
            "liburing_raw", "pread_pool", "tokio", "go", "node"]
PEERS = ["asio_epoll", "asio_uring", "pread_pool", "tokio", "go", "node"]

GROUP_TITLES = {
    "post": "Posting handlers (ns per handler, lower is better)",
    "timers": "timer_storm (ns per timer, lower is better)",
    "timer_storm_total": "timer_storm: time until every timer fired (ms, lower is better)",
    "sleep_precision": "1 ms sleeps: overshoot (µs, lower is better)",
    "rt_shapes_t1": "Tokio runtime shapes, 1 thread (ns per op, lower is better)",
    "rt_shapes_t2": "Tokio runtime shapes, 2 threads (ns per op, lower is better)",
    "rt_shapes_pool2": "Thread pools of 2 workers: zokio::thread_pool, asio::thread_pool, Tokio multi_thread (ns per op)",
    "echo_throughput": "TCP echo throughput (messages/s, higher is better)",
    "echo_latency": "TCP echo latency p50 / p99 (µs, lower is better)",
    "echo_latency_tail": "TCP echo latency p99.9 (µs, lower is better)",
    "echo_cpu": "TCP echo server CPU per message (µs, lower is better)",
    "echo_asio_sockets": "Asio sockets (boost::asio::ip::tcp) on zokio::io_context vs asio::io_context: messages/s, higher is better",
    "echo_asio_sockets_latency": "Asio sockets on zokio::io_context: latency p50 / p99 (µs, lower is better)",
    "echo_asio_sockets_cpu": "Asio sockets on zokio::io_context: server CPU per message (µs, lower is better)",
    "echo_each": "Receive loop (async_receive_each) vs async_receive_provided vs async_read_some on the zokio echo server: messages/s, higher is better",
    "echo_each_latency": "Receive loop: p99 latency (µs, lower is better)",
    "echo_each_cpu": "Receive loop: server CPU per message (µs, lower is better)",
    "echo_pool2_throughput": "TCP echo on 2 workers (thread pools; Tokio multi_thread), messages/s, higher is better",
    "echo_pool2_latency": "TCP echo on 2 workers: p99 latency (µs, lower is better)",
    "accept_churn": "Connection churn, 16 at a time: connect, echo 16 B, close (connections/s, higher is better)",
    "accept_churn_latency": "Connection churn: connect-to-echo p99 (µs, lower is better)",
    "accept_churn_cpu": "Connection churn: server CPU per connection (µs, lower is better)",
    "http": "HTTP hello over Beast under wrk (requests/s higher is better; µs lower is better)",
    "syscalls": "Server system calls per echoed message (lower is better)",
    "idle_memory": "Server RSS per idle connection (bytes, lower is better)",
    "file_io": "Files in the page cache, one thread (operations/s or MiB/s, higher is better; pread_pool: one thread per operation in flight)",
    "file_io_cpu": "Files: CPU per 4 KiB random read (ns, lower is better)",
    "signals": "Signals and child processes (µs, lower is better)",
}


# One colour per runtime in every chart; zokio stands out.
COLORS = {"zokio": "#d62728", "zokio_epoll": "#e377c2", "zokio_kqueue": "#8c564b", "zokio_no_cached_reads": "#ff9896", "zokio_lockfree": "#c49c94", "zokio_provided": "#f7b6d2", "zokio_each": "#9e0142", "asio_epoll": "#1f77b4", "asio_uring": "#17becf",
          "liburing_raw": "#7f7f7f", "pread_pool": "#bcbd22", "tokio": "#ff7f0e", "go": "#2ca02c", "node": "#9467bd"}


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f} M"
    if a >= 1e4:
        return f"{v / 1e3:.1f} k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def speedup(row, a, b):
    """How many times better runtime a is than b on this row (None if unknown)."""
    s = row["summary"]
    if a not in s or b not in s:
        return None
    va, vb = s[a]["median"], s[b]["median"]
    if va <= 0 or vb <= 0:
        return None
    return vb / va if row["better"] == "lower" else va / vb


def best_peer(row):
    cands = [p for p in PEERS if p in row["summary"] and row["summary"][p]["median"] > 0]
    if not cands:
        return None
    key = (lambda p: row["summary"][p]["median"])
    return min(cands, key=key) if row["better"] == "lower" else max(cands, key=key)


BOUND_MARKS = {"server-bound": "S", "generator-bound": "G", "both-saturated": "B",
               "latency-bound": "L"}


def bound_mark(doc, row, rt):
    """Which side limited an echo throughput cell, from the load generator's verdicts."""
    runs = (doc.get("raw") or {}).get(row["experiment"], {}).get(rt) or []
    verdicts = [r.get("bound") for r in runs if r.get("bound")]
    if not verdicts:
        return ""
    common = max(set(verdicts), key=verdicts.count)
    return f" <sup>{BOUND_MARKS.get(common, '?')}</sup>"


def columns(doc):
    present = set()
    for row in doc["rows"]:
        present.update(row["summary"])
    return [rt for rt in RUNTIMES if rt in present or rt == "zokio"]


def markdown(doc):
    m = doc["machine"]
    cols = columns(doc)
    out = []
    out.append(f"# zokio benchmark comparison ({doc['mode']})\n")
    out.append(f"- Command: `{doc['command']}` ({doc['runs']} run(s) per runtime, "
               f"{doc['elapsed_s']} s, {doc['date']})")
    out.append(f"- Machine: {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}")
    out.append(f"- Build: {m['compiler']}; {m['build_flags']}")
    out.append(f"- Versions: Boost {m['boost']}, liburing {m['liburing']}, {m['rustc']}, "
               f"tokio {m['tokio']}, {m['go']}, node {m['node']}")
    out.append(f"- Method: {doc['method']}")
    out.append("- Cells: median over the runs. \"vs best peer\" / \"vs asio_epoll\" / "
               "\"vs liburing_raw\": factor by which zokio is better (> 1: zokio better, "
               "< 1: zokio worse); best peer among "
               + ", ".join(PEERS) + ". Tokio: current_thread on 1 thread, "
               "multi_thread on 2.\n")
    if doc.get("noisy_runs"):
        out.append(f"**Warning: {len(doc['noisy_runs'])} run(s) started while other work kept "
                   "the CPUs busy (waited up to 1 s for them to become idle; measured processes run at nice -20); their figures "
                   "are unreliable. See \"Noisy runs\" below.**\n")
    head = ["scenario", "unit"] + cols + ["zokio vs best peer", "vs asio_epoll", "vs liburing_raw",
                                          "zokio_epoll vs asio_epoll", "zokio vs zokio_epoll"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
    for row in doc["rows"]:
        s = row["summary"]
        if not s:
            continue
        cells = [row["id"], row["unit"]]
        bp = best_peer(row)
        for rt in cols:
            v = fmt(s[rt]["median"]) if rt in s else "–"
            if rt == bp:
                v = f"**{v}**"
            if rt in s and row["metric"] == "msgs_per_sec":
                v += bound_mark(doc, row, rt)
            cells.append(v)
        for other in (bp, "asio_epoll", "liburing_raw"):
            f = speedup(row, "zokio", other) if other else None
            cells.append(f"{f:.2f}×" + (f" ({other})" if other == bp else "") if f else "–")
        # The backends issue's targets: zokio on epoll level with Asio's epoll
        # reactor, and the default backend no slower than zokio's epoll.
        for a, b in (("zokio_epoll", "asio_epoll"), ("zokio", "zokio_epoll")):
            f = speedup(row, a, b)
            cells.append(f"{f:.2f}×" if f else "–")
        out.append("| " + " | ".join(cells) + " |")
    out.append("\nBold: the best peer on the row. Echo throughput cells are marked with the "
               "side that limited the rate (CPU >= 80 % of its core during the window): "
               "<sup>S</sup> server, <sup>G</sup> load generator, <sup>B</sup> both, "
               "<sup>L</sup> neither (round-trip latency). Only <sup>S</sup> rows compare "
               "servers at their limit.\n")

    out.append("## Spread (median [min – max] ± MAD, n runs)\n")
    out.append("| scenario | " + " | ".join(cols) + " |")
    out.append("|---|" + "|".join(["---"] * len(cols)) + "|")
    for row in doc["rows"]:
        s = row["summary"]
        if not s:
            continue
        cells = [row["id"]]
        for rt in cols:
            if rt in s:
                x = s[rt]
                cells.append(f"{fmt(x['median'])} [{fmt(x['min'])} – {fmt(x['max'])}] "
                             f"±{fmt(x['mad'])} n={x['n']}")
            else:
                cells.append("–")
        out.append("| " + " | ".join(cells) + " |")

    zstats = zokio_stats(doc)
    if zstats:
        out.append("\n## zokio context statistics (last run of each scenario)\n")
        out.append("| experiment | kernel entries/op | submissions | kernel entries | completions "
                   "| batches | max batch | handlers run | wake-ups |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, st, ops in zstats:
            per = f"{st['kernel_entries'] / ops:.4f}" if ops else "–"
            out.append(f"| {name} | {per} | " + " | ".join(
                str(st.get(k, "–")) for k in ("submissions", "kernel_entries", "completions",
                                              "batches", "max_batch", "handlers_run",
                                              "wakeups")) + " |")

    if doc.get("skipped") or doc.get("not_run"):
        out.append("\n## Not measured\n")
        for rt, names in sorted((doc.get("skipped") or {}).items()):
            out.append(f"- {rt}: not built, skipped in: {', '.join(names)}")
        for name, why in sorted((doc.get("not_run") or {}).items()):
            out.append(f"- {name}: skipped: {why}")
    if doc.get("noisy_runs"):
        out.append("\n## Noisy runs\n")
        for n in doc["noisy_runs"]:
            out.append(f"- {n}")
    if doc.get("failures"):
        out.append("\n## Failed runs\n")
        for f in doc["failures"]:
            out.append(f"- {f.splitlines()[0]}")
    charts = doc.get("charts") or []
    if charts:
        out.append("\n## Charts\n")
        for c in charts:
            out.append(f"![{c['title']}]({c['file']})")
    return "\n".join(out) + "\n"


def zokio_stats(doc):
    rows = []
    for name, per_rt in (doc.get("raw") or {}).items():
        runs = per_rt.get("zokio") or []
        if not runs:
            continue
        last = runs[-1]
        st = last.get("stats") or {}
        if not st:
            continue
        ops = last.get("ops") or last.get("handlers") or last.get("timers") or \
            last.get("total_messages") or last.get("count") or 0
        rows.append((name, st, ops))
    return rows


def charts(doc, outdir):
    """One grouped bar chart per row group; returns [{file, title}]."""
    gp = shutil.which("gnuplot")
    if not gp:
        return []
    groups = {}
    for row in doc["rows"]:
        if row["summary"]:
            groups.setdefault(row["group"], []).append(row)
    made = []
    for group, rows in groups.items():
        rts = [rt for rt in RUNTIMES if any(rt in r["summary"] for r in rows)]
        if not rts:
            continue
        dat = os.path.join(outdir, f"{group}.dat")
        # Labels without what every row of the group says (": throughput", "echo ").
        labels = [r["id"] for r in rows]
        for word in ("echo ", ": throughput", ": server CPU"):
            if all(word in lb for lb in labels):
                labels = [lb.replace(word, "") for lb in labels]
        with open(dat, "w") as f:
            for r, label in zip(rows, labels):
                label = label.replace('"', "'")
                vals = [str(r["summary"][rt]["median"]) if rt in r["summary"] else "NaN"
                        for rt in rts]
                f.write(f'"{label}" ' + " ".join(vals) + "\n")
        png = f"{group}.png"
        title = GROUP_TITLES.get(group, group)
        width = max(640, 110 * len(rows) * max(1, len(rts)) // 3 + 200)
        plots = ", ".join(
            f"'{dat}' using {i + 2}:xtic(1) title '{rt}' lc rgb '{COLORS.get(rt, '#888888')}'"
            for i, rt in enumerate(rts))
        script = f"""
set terminal pngcairo size {width},440 noenhanced font 'sans,9' background rgb 'white'
set output '{os.path.join(outdir, png)}'
set title "{title}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set key outside right top
set grid ytics
set yrange [0:*]
set xtics scale 0 rotate by 20 right font ',9'
set bmargin 7
set lmargin 10
plot {plots}
"""
        r = subprocess.run([gp], input=script, text=True, capture_output=True, timeout=60)
        os.unlink(dat)
        if r.returncode == 0:
            made.append({"file": png, "title": title})
        else:
            print(f"gnuplot failed for {group}: {r.stderr.strip()[:500]}", file=sys.stderr)
    return made


PERF = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = os.path.dirname(PERF)
RESULTS = os.path.join(PERF, "results")      # the published full run (in git)
LAST_RUN = os.path.join(RESULTS, "tmp")       # perf/run's default output (not in git)
README = os.path.join(TOP, "README.md")

# The README's table sits between these markers; the text in the opening
# marker is rewritten, so only its start is matched.
README_BEGIN = "<!-- perf:begin (written by perf/run --publish; perf/README.md) -->"
README_BEGIN_RE = re.compile(r"<!-- perf:begin\b[^\n]*?-->")
README_END = "<!-- perf:end -->"


class PublishError(Exception):
    pass


def readme_section(readme):
    """README.md's text and where its perf section starts and ends."""
    with open(readme) as f:
        text = f.read()
    m = README_BEGIN_RE.search(text)
    end = text.find(README_END, m.end()) if m else -1
    if end < 0:
        raise PublishError(f"{readme} has no perf markers ({README_BEGIN} ... {README_END})")
    return text, m.start(), end + len(README_END)


def update_readme(doc, md, outdir, readme):
    """Puts the table of a full run (up to the spread section) and its charts
    into README.md between the perf markers, so the README shows the
    published full result and the command that made it."""
    text, begin, end = readme_section(readme)
    rel = os.path.relpath(outdir, os.path.dirname(readme))
    table = md.split("## Spread")[0].split("\n", 1)[1].strip()  # without the title
    section = [README_BEGIN, "", table, "",
               f"Spread, zokio's statistics and failed or noisy runs: [{rel}/latest.md]({rel}/latest.md).", ""]
    for c in doc.get("charts") or []:
        section.append(f"![{c['title']}]({rel}/{c['file']})")
    section += ["", README_END]
    with open(readme, "w") as f:
        f.write(text[:begin] + "\n".join(section) + text[end:])


CHART_LINK = re.compile(r"^!\[[^\]]*\]\(([^()/]+\.png)\)$", re.M)


def old_charts(outdir):
    """The charts that the previous latest.md in outdir lists: the only
    images removed before drawing (a --out directory may hold others)."""
    try:
        with open(os.path.join(outdir, "latest.md")) as f:
            return CHART_LINK.findall(f.read())
    except OSError:
        return []


def write_all(doc, outdir):
    """Charts and latest.md in outdir, from doc; returns the Markdown."""
    for old in old_charts(outdir):
        try:
            os.unlink(os.path.join(outdir, old))
        except FileNotFoundError:
            pass
    doc["charts"] = charts(doc, outdir)
    md = markdown(doc)
    with open(os.path.join(outdir, "latest.md"), "w") as f:
        f.write(md)
    return md


def write_json(doc, outdir):
    with open(os.path.join(outdir, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)


def full_set(doc):
    """A full run of every scenario: what the committed result and README show."""
    return doc.get("mode") == "full" and not doc.get("only") and \
        "--only" not in (doc.get("command") or "").split()


def publish(doc, results=RESULTS, readme=README):
    """The maintainer's step: doc becomes results/latest.json, latest.md and
    its charts, and README.md's table. Returns the Markdown."""
    if not full_set(doc):
        raise PublishError(f"not a full run of every scenario (mode {doc.get('mode')}, "
                           f"command `{doc.get('command')}`): only `perf/run` (full) is published")
    if not shutil.which("gnuplot"):
        raise PublishError("gnuplot is not installed: the published result would have no charts")
    readme_section(readme)  # its markers, before anything is written
    os.makedirs(results, exist_ok=True)
    write_json(doc, results)  # first, so a failure below leaves the runs there
    md = write_all(doc, results)
    write_json(doc, results)  # again, with the chart list
    update_readme(doc, md, results, readme)
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Table and charts from a run's latest.json; --publish makes it the committed result.")
    ap.add_argument("json", nargs="?", default=os.path.join(LAST_RUN, "latest.json"),
                    help="a run's latest.json (default: perf/results/tmp/latest.json, the last perf/run)")
    ap.add_argument("--publish", action="store_true",
                    help="write it to perf/results/ (latest.json, latest.md, charts) and rewrite "
                         "README.md's table between the perf markers; only a full run of every scenario")
    args = ap.parse_args(argv)
    try:
        with open(args.json) as f:
            d = json.load(f)
    except (OSError, ValueError) as err:
        print(f"report.py: {args.json}: {err}", file=sys.stderr)
        return 1
    if not args.publish:
        outdir = os.path.dirname(os.path.abspath(args.json))
        print(write_all(d, outdir))
        write_json(d, outdir)
        print(f"report.py: {os.path.join(outdir, 'latest.md')} and its charts", file=sys.stderr)
        return 0
    try:
        publish(d)
    except (PublishError, OSError) as err:
        print(f"report.py --publish: {err}", file=sys.stderr)
        return 1
    print(f"report.py --publish: {os.path.relpath(RESULTS, TOP)}/latest.json, latest.md, "
          f"{len(d.get('charts') or [])} charts and README.md's table from {args.json}; "
          "see git status and git diff before committing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
