"""A pytest plugin: how much resident memory each test leaves behind, largest first.

    python -m pytest -p benchmarks.suite_memory

After the run it prints the 15 tests that grew the pytest process most (RSS after
minus before, MB), the RSS after each and the process's peak (VmHWM) so far, and
writes every row to ``suite-memory.tsv`` in the current folder.
"""
from __future__ import annotations

import pytest

ROWS: list[tuple[int, int, int, str]] = []


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) // 1024
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = _status()["VmRSS"]
    yield
    after = _status()
    ROWS.append((after["VmRSS"] - before, after["VmRSS"], after["VmHWM"], item.nodeid))


def pytest_terminal_summary(terminalreporter):
    with open("suite-memory.tsv", "w") as out:
        out.write("grew_mb\trss_mb\tpeak_mb\ttest\n")
        out.writelines(f"{g}\t{r}\t{p}\t{t}\n" for g, r, p, t in ROWS)
    terminalreporter.section("memory left behind per test (MB)")
    for grew, rss, peak, test in sorted(ROWS, reverse=True)[:15]:
        terminalreporter.write_line(f"{grew:+7d}  rss {rss:6d}  peak {peak:6d}  {test}")
