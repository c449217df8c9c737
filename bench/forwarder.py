"""One hop of the bare aiokafka pipeline: consume a topic, produce fixed-size records onward.

    python -m bench.forwarder IN_TOPIC GROUP '[["out-topic", 812, 1], ...]'

Each consumed record produces `copies` records of `size` bytes on each output topic, with the
same key, through an idempotent acks=all producer (as the services' EventPublisher); offsets are
committed after the batch is acknowledged, as the services do. Runs until terminated.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import KAFKA


async def forward(source: str, group: str, outputs: list[tuple[str, int, int]]) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=KAFKA,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=2
    )
    await consumer.start()
    await producer.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    payloads = {topic: b"x" * size for topic, size, _ in outputs}
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            futures = []
            for records in batches.values():
                for record in records:
                    for topic, _, copies in outputs:
                        for _ in range(copies):
                            futures.append(
                                await producer.send(topic, payloads[topic], key=record.key)
                            )
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    in_topic, group_id, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    asyncio.run(forward(in_topic, group_id, [(t, int(s), int(c)) for t, s, c in spec]))
