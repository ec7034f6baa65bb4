"""Running the daemon and the Daily emulator together on loopback: the demo's and tests' glue.

- ``stack``: ``Stack`` (the emulator in-process, one or several ``flowengine serve`` child
  processes on one store, the bridge);
- ``process``: ``DaemonProcess`` (one ``flowengine serve``), ``Secrets``, ``free_port``;
- ``bridge``: ``RoomBridge``, the stand-in for the in-room participant: caller key presses
  from the emulator's rooms to the daemon's ``POST /v1/calls/{id}/events``;
- ``room_client``: ``EmulatorCallClient``, daily-python's ``CallClient`` shape over the
  emulator (its room events and REST API), so real participants can run against it;
- ``flows``: a working copy of a flows folder with the changes a local run needs;
- ``report``: traces as lines, a call's path, Daily's side effects per call.

docs/demo.md describes how they fit together.
"""

from __future__ import annotations

from .bridge import Forwarded, RoomBridge
from .flows import copy_flows, set_var_default
from .process import DaemonProcess, Secrets, StackError, free_port
from .room_client import EmulatorCallClient, NullAudio, emulator_client_factory
from .stack import Stack

__all__ = [
    "DaemonProcess",
    "EmulatorCallClient",
    "Forwarded",
    "NullAudio",
    "RoomBridge",
    "Secrets",
    "Stack",
    "StackError",
    "copy_flows",
    "emulator_client_factory",
    "free_port",
    "set_var_default",
]
