"""The keras-engine run's child process: `python -m prunelab.worker.keras3.child`, started by `process`.

It trains with `prunelab.worker.keras3.train` and talks to the worker process in JSON lines: the request
(spec, plan, folders) on stdin, then `stop` and `saved` replies on stdin; points, checkpoints, and the
result or the failure on the original stdout (everything else the process prints goes to stderr). The
worker process keeps the run's database reporter, checkpointer and artifact store; this process has none.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class Channel:
    """Messages to the worker process (one JSON object a line) and the replies and stops it sends back."""

    def __init__(self, out: IO[str], incoming: IO[str]) -> None:
        self.out = out
        self.incoming = incoming
        self.stop = threading.Event()
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def read_request(self) -> dict[str, Any]:
        return dict(json.loads(self.incoming.readline()))

    def listen(self) -> None:
        """Read stops and replies until the worker closes stdin (it ended or died: then stop too)."""
        for line in self.incoming:
            message = json.loads(line)
            if message["kind"] == "stop":
                self.stop.set()
            else:
                self.replies.put(message)
        self.stop.set()
        self.replies.put({"kind": "closed"})


class ChannelReporter:
    """The `Reporter` the training sees: points go to the worker's database reporter."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def log(self, step: int, metrics: Mapping[str, float], wall_time: float) -> None:
        values = {key: float(value) for key, value in metrics.items()}
        self.channel.send({"kind": "log", "step": step, "metrics": values, "wall_time": wall_time})

    def stop_requested(self) -> bool:
        return self.channel.stop.is_set()


class ChannelCheckpointer:
    """The `Checkpointer` the training sees: the worker stores each file (after writing the points before it)."""

    def __init__(self, channel: Channel, latest: str | None) -> None:
        self.channel = channel
        self._latest = Path(latest) if latest else None

    def latest(self) -> Path | None:
        return self._latest

    def save(self, epoch: int, step: int, path: Path) -> None:
        self.channel.send({"kind": "checkpoint", "epoch": epoch, "step": step, "path": str(path)})
        self.channel.replies.get()  # blocks, as Checkpointer.save does: the file is stored (or refused) now


def main() -> int:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Keras, TensorFlow and JAX print to stdout: keep it for the messages
    channel = Channel(out, sys.stdin)
    request = channel.read_request()
    threading.Thread(target=channel.listen, name="prunelab-channel", daemon=True).start()
    try:
        from prunelab.core.plans import RunPlan
        from prunelab.core.specs import RunSpec
        from prunelab.worker.keras3.train import train

        result = train(
            RunSpec.model_validate(request["spec"]),
            RunPlan.model_validate(request["plan"]),
            ChannelReporter(channel),
            data_dir=Path(request["data_dir"]) if request["data_dir"] else None,
            output_dir=Path(request["output_dir"]),
            start_model=Path(request["start_model"]) if request["start_model"] else None,
            checkpoints=ChannelCheckpointer(channel, request["checkpoint"]) if request["checkpoints"] else None,
        )
    except Exception as error:  # noqa: BLE001 - every failure goes to the worker, which fails the run with it
        traceback.print_exc()
        channel.send({"kind": "failed", "type": type(error).__name__, "message": str(error)})
        return 1
    exports = {name: str(path) for name, path in result.exports.items()}
    channel.send(
        {
            "kind": "result",
            "summary": result.summary,
            "exports": exports,
            "cancelled": result.cancelled,
            "steps_completed": result.steps_completed,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
