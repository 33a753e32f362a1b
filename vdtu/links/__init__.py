"""Implementations of the firmware's cloud interfaces: simulated (virtual time) and real (MQTT)."""
