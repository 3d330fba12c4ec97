"""
What C{twisted-net bench} shows: live progress, the results table, and
hints when errors look like the server's own per-host limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

__all__ = ["format_interrupted", "format_table", "limit_hints", "progress_printer"]


def limit_hints(result: dict[str, Any]) -> list[str]:
    """
    Why a run may have seen errors that are the server's own per-host limits
    at work rather than failures: the load comes from one host.
    """
    detail = result.get("error_detail", {})
    hints = []
    if result["scenario"] == "udp" and result["errors"]:
        hints.append(
            f"{result['errors']} datagram(s) got no reply or a wrong one: likely the server's "
            "UDP rate limit (twist net answers 200 datagrams/s per host by default); "
            "benchmark a server started with --udp-rate 0 --max-per-peer 0"
        )
    elif detail.get("connect") or detail.get("closed") or detail.get("reset"):
        hints.append(
            "connections were refused or closed: if there are more than the server's "
            "--max-per-peer (100 per host by default for twist net), benchmark a server "
            "started with --udp-rate 0 --max-per-peer 0"
        )
    return hints


def progress_printer(stream: IO[str], scenario: str) -> Callable[[float, int], None]:
    tty = stream.isatty()

    def show(elapsed: float, messages: int) -> None:
        rate = messages / elapsed if elapsed else 0.0
        text = f"[{scenario}] {elapsed:5.1f} s  {messages:>10,} msgs  {rate:>10,.0f}/s"
        stream.write(("\r" + text) if tty else (text + "\n"))
        stream.flush()

    return show


def format_table(results: list[dict[str, Any]]) -> str:
    """
    The results as a plain-text table, one row per scenario.
    """
    server_columns = any("server_peak_rss_kib" in r for r in results)
    header = (
        f"{'scenario':<10} {'conns':>6} {'msgs/s':>11} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'errors':>7}"
    )
    if server_columns:
        header += f" {'srv RSS MB':>10} {'srv CPU':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        latency = r["latency_us"]
        line = (
            f"{r['scenario']:<10} {r['connections']:>6} {r['msgs_per_s']:>11,.0f} "
            f"{latency['p50'] / 1000:>8.2f} {latency['p90'] / 1000:>8.2f} "
            f"{latency['p99'] / 1000:>8.2f} {latency['max'] / 1000:>8.2f} {r['errors']:>7}"
        )
        if server_columns:
            line += (
                f" {r.get('server_peak_rss_kib', 0) / 1024:>10.1f} {r.get('server_cpu', 0.0):>7.0%}"
            )
        lines.append(line)
    return "\n".join(lines)


def format_interrupted(results: list[dict[str, Any]]) -> str:
    """
    One line for a run stopped by Ctrl-C: what each scenario measured so
    far, the interrupted one last.
    """
    parts = []
    for r in results:
        where = f"{r['scenario']}{' (interrupted)' if r.get('interrupted') else ''}"
        if not r.get("duration_s"):
            parts.append(f"{where}: nothing measured yet")
            continue
        text = (
            f"{where}: {r['messages']:,} {r.get('unit', 'messages')} in {r['duration_s']:.1f} s, "
            f"{r['msgs_per_s']:,.0f}/s"
        )
        latency = r.get("latency_us")
        if latency and r["messages"]:
            text += f", p50 {latency['p50'] / 1000:.2f} ms, p99 {latency['p99'] / 1000:.2f} ms"
        parts.append(f"{text}, {r.get('errors', 0)} errors")
    return "interrupted: " + ("; ".join(parts) or "nothing measured yet")
