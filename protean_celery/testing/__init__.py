"""Test toolkit: real servers, worker processes, drain."""
