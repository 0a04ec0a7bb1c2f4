"""A Pusher protocol 7 websocket subscriber, run as its own process, that logs what it receives.

`python -m benchlib.subscriber --url WS_URL --channel admin --out FILE` prints READY once
subscribed, then records (lead name, event_id, CLOCK_MONOTONIC ns) for every event whose data
is a JSON object with "event_id" and "occurred_at". Commands on stdin: `expect N` (finish once N
distinct event ids arrived), `stop` (finish now); end of stdin finishes too. On finishing it
writes {"received": [[name, event_id, recv_ns], ...], "other_frames": n} to FILE and prints DONE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import orjson
import uvloop
from websockets.asyncio.client import connect


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, str, int]] = []
        self.event_ids: set[str] = set()
        self.other_frames = 0
        self.expect: int | None = None
        self.finished = asyncio.Event()

    def record(self, payload: str, recv_ns: int) -> None:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.other_frames += 1
            return
        if not isinstance(data, dict) or "event_id" not in data or "occurred_at" not in data:
            self.other_frames += 1
            return
        lead = data.get("lead") or {}
        self.received.append((str(lead.get("name", "")), str(data["event_id"]), recv_ns))
        self.event_ids.add(str(data["event_id"]))
        self.check_done()

    def check_done(self) -> None:
        if self.expect is not None and len(self.event_ids) >= self.expect:
            self.finished.set()


async def read_commands(recorder: Recorder) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            recorder.finished.set()
            return
        if line.startswith("expect "):
            recorder.expect = int(line.split()[1])
            recorder.check_done()


async def subscribe(url: str, channel: str, recorder: Recorder) -> None:
    async with connect(url, max_queue=None, ping_interval=None) as ws:
        established = json.loads(await ws.recv())
        if established.get("event") != "pusher:connection_established":
            raise SystemExit(f"unexpected first frame: {established}")
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        async for frame in ws:
            recv_ns = time.monotonic_ns()
            message = orjson.loads(frame)
            event = message.get("event", "")
            if event == "pusher_internal:subscription_succeeded":
                print("READY", flush=True)
            elif event == "pusher:ping":
                await ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
            elif event.startswith("pusher"):
                recorder.other_frames += 1
            else:
                recorder.record(message.get("data", ""), recv_ns)


async def run(args: argparse.Namespace) -> None:
    recorder = Recorder()
    commands = asyncio.create_task(read_commands(recorder))
    listener = asyncio.create_task(subscribe(args.url, args.channel, recorder))
    finished = asyncio.create_task(recorder.finished.wait())
    done, _ = await asyncio.wait(
        {listener, finished}, timeout=args.max_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for task in (commands, listener, finished):
        task.cancel()
    if listener in done and listener.exception() is not None:
        print(f"ERROR {listener.exception()!r}", flush=True)
    Path(args.out).write_text(
        json.dumps({"received": recorder.received, "other_frames": recorder.other_frames})
    )
    print("DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--channel", default="admin")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
