"""Loopback emulators of chat platforms' wire protocols, driven by the real client libraries in tests."""
