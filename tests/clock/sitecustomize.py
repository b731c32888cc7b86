"""Move this Python process's clock for the date matrix (`make matrix`); inert otherwise.

`scripts/test_matrix.py` puts this folder on PYTHONPATH, so every Python process of a run
(pytest, the tap and sandbox subprocesses, Meltano) imports it at start-up. With
`TAP_CALVEN_TEST_CLOCK=<ISO instant>@<real epoch seconds>` the process's wall clock reads
that instant at that real moment and ticks on from there, so processes started at different
times still share one clock; without `@...` the clock starts at the instant when the process
starts. Monotonic clocks and `time.sleep` are left alone.
"""

from __future__ import annotations

import datetime as dt
import os
import time

_SPEC = os.environ.get("TAP_CALVEN_TEST_CLOCK", "")

if _SPEC:
    import time_machine

    _instant, _, _anchor = _SPEC.partition("@")
    _target = dt.datetime.fromisoformat(_instant.replace("Z", "+00:00")).timestamp()
    _now = _target + (time.time() - float(_anchor)) if _anchor else _target
    time_machine.travel(_now, tick=True).start()
