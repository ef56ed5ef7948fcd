"""The app's interactive loop, measured in a real browser (Debian's Chromium via Playwright).

    .venv/bin/python bench/app_loop.py [--moves 20] [--json bench/app_loop.json]

Measures, on the Explore page with the default sample (512 px, AlexNet, CPU):

* server start → first usable page (the image-source controls visible), and → first metric values;
* slider change → updated LPIPS card, p50 and p95 over ``--moves`` moves;
* bytes sent to the browser per slider move (websocket frames + HTTP responses such as the
  images), with every map visible.

A benchmark prints figures; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import (launch_browser, lpips_card_text, running_app, wait_lpips_card_change,  # noqa: E402
                     wait_until_idle)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--json", default=str(ROOT / "bench" / "app_loop.json"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    env = {"LPIPS_EXPLORER_MAX_SIDE": "512"}
    with running_app(env=env) as (url, proc, start):
        healthy = time.monotonic() - start
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            received = {"ws": 0, "http": 0, "static": 0}

            def on_ws(ws):
                ws.on("framereceived", lambda payload: received.__setitem__(
                    "ws", received["ws"] + (len(payload) if payload else 0)))

            def on_response(resp):
                try:
                    n = len(resp.body())
                    # The app's JS/CSS/fonts load once per browser (and are cached); count them apart.
                    received["static" if "/static/" in resp.url else "http"] += n
                    if os.environ.get("APP_LOOP_DEBUG"):
                        print(f"    http {n:>9} {resp.url[-70:]}")
                except Exception:  # redirects and aborted requests have no body
                    pass

            page.on("websocket", on_ws)
            page.on("response", on_response)
            page.goto(url)
            page.get_by_role("radiogroup", name="Reference image").wait_for(timeout=300_000)
            first_controls = time.monotonic() - start
            page.wait_for_selector('[data-testid="stMetric"]', timeout=300_000)
            wait_until_idle(page, 300_000)
            first_values = time.monotonic() - start
            page.wait_for_load_state("networkidle")

            thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Blur").locator('input[type="range"]').first
            latencies, bytes_per_move = [], []
            value = lpips_card_text(page)
            for i in range(args.moves):
                before = dict(received)
                thumb.focus()
                t0 = time.monotonic()
                thumb.press("ArrowRight")  # always a new value: nothing may come from a cache
                wait_lpips_card_change(page, value, 120_000)
                latencies.append((time.monotonic() - t0) * 1000)
                wait_until_idle(page, 120_000)
                page.wait_for_timeout(300)  # let image requests of this rerun finish
                value = lpips_card_text(page)
                bytes_per_move.append((received["ws"] - before["ws"]) + (received["http"] - before["http"]))
                if os.environ.get("APP_LOOP_DEBUG"):
                    print(f"  move {i}: {latencies[-1]:.0f} ms, ws {received['ws'] - before['ws']}, "
                          f"http {received['http'] - before['http']}")
            browser.close()

    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "server_healthy_s": round(healthy, 2),
        "first_controls_s": round(first_controls, 2),
        "first_values_s": round(first_values, 2),
        "moves": args.moves,
        "update_ms_p50": round(statistics.median(latencies), 1),
        "update_ms_p95": round(percentile(latencies, 0.95), 1),
        "bytes_per_move_median": int(statistics.median(bytes_per_move)),
        "bytes_per_move_max": int(max(bytes_per_move)),
        "static_assets_bytes": int(received["static"]),
    }
    print(f"App loop on {result['machine']} ({result['date']}), Explore page, 512 px sample, AlexNet, CPU")
    print(f"  server start → healthy           {result['server_healthy_s']:>8.2f} s")
    print(f"  server start → controls visible  {result['first_controls_s']:>8.2f} s")
    print(f"  server start → first metrics     {result['first_values_s']:>8.2f} s")
    print(f"  slider → LPIPS card, p50 / p95   {result['update_ms_p50']:>8.1f} / {result['update_ms_p95']:.1f} ms "
          f"over {args.moves} moves")
    print(f"  bytes to the browser per move    {result['bytes_per_move_median'] / 1024:>8.1f} KB median, "
          f"{result['bytes_per_move_max'] / 1024:.1f} KB max")
    print(f"  static assets (once per browser)  {result['static_assets_bytes'] / 1024 / 1024:>8.1f} MB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
