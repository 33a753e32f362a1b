"""The cloud side of vdtu: MQTT brokers (the embedded amqtt one, a private mosquitto),
broker URLs, and the local cloud services the simulated DTUs talk to.

Modules are imported by name (``vdtu.cloud.broker``, ``vdtu.cloud.broker_url``, ...);
this package marker imports nothing, so loading one cloud module never pulls in the
others' dependencies.
"""

from __future__ import annotations
