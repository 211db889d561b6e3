"""The stack's own start: every service gets a port of its own, and a service whose port another
process holds is never taken for started (CI once ran a whole module with both providers' clusters
pointing at one mock, which then answered for both)."""
import pytest

import mock_provider
from stack import gateway


def test_ports_picked_together_are_distinct_and_avoid_the_taken_ones():
    names = [f"service{index}" for index in range(50)]
    taken = set(gateway.free_ports(["a", "b", "c"]).values())
    ports = gateway.free_ports(names, taken=taken)
    assert list(ports) == names
    assert len(set(ports.values())) == len(names)
    assert not taken & set(ports.values())


def test_a_mock_whose_port_is_held_by_another_is_not_taken_for_started():
    squatter = mock_provider.start_in_thread("minmax")
    stack = gateway.Stack()
    stack.open_dir()
    try:
        stack.ports = {"qianwen": squatter.server_address[1]}
        with pytest.raises(gateway.StackError, match="qianwen exited"):
            stack._start_mock("qianwen")
    finally:
        squatter.shutdown()
        stack.stop()
