"""Fixtures the core verifier tests share (used through ``pytestmark``, not autouse)."""

import socket

import pytest
import torch


@pytest.fixture
def network_guard(monkeypatch):
    """HF offline + sockets that refuse and record every connection attempt."""
    attempts = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == [], f"network connections attempted: {attempts}"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run 10-100x faster on one thread than on oversubscribed cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
