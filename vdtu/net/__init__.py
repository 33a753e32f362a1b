"""Network clients on the process's one asyncio loop: MQTT links driven by a shared hub."""
