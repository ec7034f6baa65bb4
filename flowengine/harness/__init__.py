"""Running the daemon and the Daily emulator together on loopback: the demo's and tests' glue.

- ``stack``: ``Stack`` (the emulator in-process, one or several ``flowengine serve`` child
  processes on one store, the bridge);
- ``process``: ``DaemonProcess`` (one ``flowengine serve``), ``Secrets``, ``free_port``;
- ``bridge``: ``RoomBridge``, the stand-in for the in-room participant: caller key presses
  from the emulator's rooms to the daemon's ``POST /v1/calls/{id}/events``;
- ``flows``: a working copy of a flows folder with the changes a local run needs;
- ``report``: traces as lines, a call's path, Daily's side effects per call.

docs/demo.md describes how they fit together.
"""

from __future__ import annotations

from .bridge import Forwarded, RoomBridge
from .flows import copy_flows, set_var_default
from .process import DaemonProcess, Secrets, StackError, free_port
from .stack import Stack

__all__ = [
    "DaemonProcess",
    "Forwarded",
    "RoomBridge",
    "Secrets",
    "Stack",
    "StackError",
    "copy_flows",
    "free_port",
    "set_var_default",
]
