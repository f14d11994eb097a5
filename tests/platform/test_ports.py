"""Ports for a harness's components (control plane, real node, Argo CD): picked together, each
is its own and free. Picked one by one, the kernel hands the same port out again as soon as the
probing socket closes, and two components then fight over it ("address already in use")."""

from __future__ import annotations

import socket

import pytest

from tools.cluster.toolbox import free_ports

pytestmark = pytest.mark.unit


def test_free_ports_are_distinct_and_free():
    # Enough that ports picked one at a time repeat in practice (500 draws: every time, measured).
    names = [f"component-{index}" for index in range(500)]

    ports = free_ports(names)

    assert list(ports) == names
    assert len(set(ports.values())) == len(names)
    for port in ports.values():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
