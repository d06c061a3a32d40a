"""Tests that run microback as a real process on loopback."""
