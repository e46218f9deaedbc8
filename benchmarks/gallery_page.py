"""How long the page's Gallery tab takes to show every face, on the whole seed gallery.

    python benchmarks/gallery_page.py [--visits 3]

The dlib-resnet model (MTCNN faces) over all 128 seed photos, a server on 127.0.0.1
(random port) and headless Chromium: each visit clicks Search, then Gallery, and
times until every card's faces are drawn (no placeholder left). The first visit
computes the strips; later ones are answered 304 by their ETags. Needs Debian's
chromium, playwright and ../shared/data/seed-faces.
"""
from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: E402,F401 - first: the import path, TensorFlow quiet

SETTLED = """() => { const figs = [...document.querySelectorAll('.person .thumbs figure')];
    return figs.length > 0 && figs.every(f => !f.classList.contains('loading')
        && f.querySelector('img').naturalWidth > 0); }"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visits", type=int, default=3)
    args = ap.parse_args()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from jobs.api import Settings, create_app
    from storage.keys import create_key
    from tests.conftest import SEED_FACES
    from tests.groups import dlib_home

    with tempfile.TemporaryDirectory() as tmp:
        people = sorted(p.name for p in SEED_FACES.iterdir() if p.is_dir())
        ws, sessions, _ = dlib_home(Path(tmp), people, photos=8)
        with sessions.begin() as s:
            key = create_key(s, "bench", "read")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(ws, sessions, Settings(model="dlib")),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1200, "height": 900})
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.fill("#key", key)
                    page.click("#key-form button[type=submit]")
                    page.wait_for_selector("#key-state:has-text('key set')")
                    for visit in range(1, args.visits + 1):
                        page.click("button[data-tab=search]")
                        t = time.perf_counter()
                        page.click("button[data-tab=gallery]")
                        page.wait_for_function(SETTLED, timeout=60_000)
                        took = time.perf_counter() - t
                        faces = page.evaluate("document.querySelectorAll('.person .thumbs figure').length")
                        cards = page.evaluate("document.querySelectorAll('.person').length")
                        print(f"visit {visit}: {faces} faces of {cards} people settled in {took:.2f} s")
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
