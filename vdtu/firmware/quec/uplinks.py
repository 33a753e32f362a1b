"""The QuecPython firmware's uplinks: sending on a channel, the offline store, replies.

How it works. ``send_uplink`` hands a payload to its channel's driver. When the
driver cannot take it (no driver, not connected, its send refused) or later loses it
(a QoS 1 publish in flight when the link dropped, ``send_failed``), the payload goes
into the offline store when ``offline_storage`` is on (100 items, the oldest dropped
and counted; docs/spec/quec.md#12.1), which is persisted in the flash after every
change; otherwise it is logged (its size only: a code 4 reply holds the password) and
counted as lost. When a channel connects again ``replay`` sends its stored items in
order and puts back what it could not send. A command reply goes on the publish topic
its ``topic_id`` names, or the channel's first one (``publish_reply``).

These functions work on the ``QuecFirmware``'s state (its drivers, stats, offline
store and flash); the firmware calls them as the channels' ``ChannelHost``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vdtu.firmware.quec.channel_schema import AliyunChannel, MqttChannel, TxyunChannel
from vdtu.firmware.quec.executor import Diagnostic, DiagnosticCode
from vdtu.firmware.quec.offline import Stored
from vdtu.log import PREVIEW_BYTES, LogLevel
from vdtu.storage import FlashError

if TYPE_CHECKING:
    from vdtu.firmware.quec.commands import Reply
    from vdtu.firmware.quec.config import DtuConfig
    from vdtu.firmware.quec.firmware import QuecFirmware


def send_uplink(firmware: QuecFirmware, cid: str, topic_id: str | None, payload: str) -> None:
    """Send on channel ``cid``; store it (or count it lost) when the channel cannot."""
    driver = firmware.drivers.get(cid)
    if driver is None:
        send_failed(firmware, cid, topic_id, payload, f"channel {cid} is not running")
        return
    problem = driver.send(payload, topic_id)
    if problem is not None:
        send_failed(firmware, cid, topic_id, payload, problem)
        return
    firmware.stats.uplinks_sent += 1
    firmware.event(
        "uplink", {"channel": cid, "topic_id": topic_id, "payload": payload[:PREVIEW_BYTES]}
    )
    for listener in firmware.on_uplink:
        listener(cid, topic_id, payload)


def send_failed(
    firmware: QuecFirmware, cid: str, topic_id: str | None, payload: str, reason: str
) -> None:
    config = firmware.config
    firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_SEND_ERROR))
    if config is None or not config.offline_storage:
        firmware.stats.uplinks_lost += 1
        firmware.write_log(  # the size only: a lost code 4 reply holds the password
            LogLevel.ERROR, f"ch{cid}", f"uplink lost ({reason}): {len(payload)} characters"
        )
        return
    dropped = firmware.offline.add(Stored(channel=cid, topic_id=topic_id, payload=payload))
    firmware.stats.uplinks_stored += 1
    firmware.write_log(LogLevel.WARN, f"ch{cid}", f"uplink stored offline ({reason})")
    if dropped is not None:
        firmware.write_log(
            LogLevel.ERROR,
            f"ch{dropped.channel}",
            f"offline store full ({firmware.offline.capacity}): oldest uplink dropped, "
            f"{firmware.offline.dropped} so far",
        )
    _save_offline(firmware)


def _save_offline(firmware: QuecFirmware) -> None:
    firmware.nvram["history"] = firmware.offline.to_json()
    try:
        firmware.save_nvram()
    except FlashError as exc:
        firmware.flash_failed("offline", f"offline store kept in memory only: {exc}")


def replay(firmware: QuecFirmware, cid: str) -> None:
    """Replay what channel ``cid`` could not send before, in order."""
    items = firmware.offline.take(cid)
    if not items:
        return
    driver = firmware.drivers.get(cid)
    sent = 0
    for index, item in enumerate(items):
        problem = None if driver is None else driver.send(item.payload, item.topic_id)
        if driver is None or problem is not None:
            firmware.offline.put_back(items[index:])
            break
        sent += 1
        firmware.event(
            "uplink",
            {"channel": cid, "topic_id": item.topic_id, "payload": item.payload[:PREVIEW_BYTES],
             "replayed": True},
        )  # fmt: skip
    firmware.stats.replayed += sent
    firmware.stats.uplinks_sent += sent
    firmware.write_log(LogLevel.INFO, f"ch{cid}", f"replayed {sent} stored uplinks")
    _save_offline(firmware)


def publish_reply(firmware: QuecFirmware, cid: str, reply: Reply) -> None:
    """Send a reply on ``publish[topic_id]``; a topic id the channel lacks gets the reply
    on its first publish topic (where v2's offline replay would end up sending it),
    with a WARN: it is never stored, where it would push real uplinks out."""
    topic_id = reply.topic_id
    if not publish_topic_known(firmware.config, cid, topic_id):
        firmware.stats.replies_rerouted += 1
        firmware.write_log(
            LogLevel.WARN,
            f"ch{cid}",
            f"reply to code {reply.body.get('code')}: topic id {cut(topic_id)} is not a "
            "publish topic of this channel; sent on its first publish topic",
        )
        topic_id = None
    send_uplink(firmware, cid, topic_id, reply.to_json())


def publish_topic_known(config: DtuConfig | None, cid: str, topic_id: str | None) -> bool:
    """Whether ``topic_id`` names a publish topic of channel ``cid`` (None always does;
    so does any id on a channel type that has no publish table)."""
    channel = None if config is None else config.conf.get(cid)
    if topic_id is None or not isinstance(channel, MqttChannel | AliyunChannel | TxyunChannel):
        return True
    return topic_id in channel.publish


def cut(value: str | None) -> str:
    """``repr(value)`` cut to 40 characters (a topic id from the cloud can be any size)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
