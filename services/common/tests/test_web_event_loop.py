"""The Faust workers' processes run uvloop everywhere: their own loop and the loops their
threads make afterwards (Faust's consumer thread makes one with `asyncio.new_event_loop`)."""

import subprocess
import sys

PROBE = """
import asyncio, threading
from mode.threads import ServiceThread
from permits_common.web.app import new_event_loop

loop = new_event_loop()
asyncio.set_event_loop(loop)
made = {}
thread = threading.Thread(target=lambda: made.update(loop=asyncio.new_event_loop()))
thread.start()
thread.join()
consumer_thread = ServiceThread(loop=loop)
print(type(loop).__module__, type(made["loop"]).__module__,
      type(consumer_thread.thread_loop).__module__)
"""


def test_the_worker_loop_and_its_threads_loops_are_uvloop() -> None:
    found = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.split() == ["uvloop", "uvloop", "uvloop"]
