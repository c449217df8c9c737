"""Publishes the event contract from the code: one JSON Schema per event type and an AsyncAPI 3.0
document of every topic. `python -m permits_common.events.schemas` writes them into docs/;
`--check` fails when the committed files differ from what the code says (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from permits_common.events import topics
from permits_common.events.models import EVENT_MODELS, EventData, HolderStatusChanged

_ENVELOPE_FIELDS: dict[str, Any] = {
    "specversion": {"type": "string", "const": "1.0"},
    "id": {"type": "string", "description": "Unique; consumers deduplicate on it"},
    "source": {"type": "string", "description": "The producing service, e.g. /permits/intake"},
    "type": {"type": "string"},
    "time": {"type": "string", "format": "date-time"},
    "subject": {"type": "string", "description": "Also the Kafka key"},
    "datacontenttype": {"type": "string", "const": "application/json"},
}


def event_schema(event_type: str, model: type[EventData]) -> dict[str, Any]:
    """The JSON Schema of a whole CloudEvent of one type, data included."""
    data = model.model_json_schema(mode="serialization")
    definitions = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://permits.jinan.example/events/{event_type}.json",
        "title": event_type,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "required": [*_ENVELOPE_FIELDS, "data"],
        "properties": {
            **_ENVELOPE_FIELDS,
            "type": {"type": "string", "const": event_type},
            "data": data,
        },
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


def _topic_types(topic: str) -> list[str]:
    if topic.startswith("permits.rights."):
        return [HolderStatusChanged.event_type()]
    return [name for name, model in EVENT_MODELS.items() if topic == model.TOPIC]


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0: a channel per topic, a message per event type, schemas by reference."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in EVENT_MODELS:
        messages[_message_id(event_type)] = {
            "name": event_type,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"./events/{event_type}.json"},
        }
    for spec in topics.TOPICS:
        channel_id = spec.name.replace(".", "_")
        channels[channel_id] = {
            "address": spec.name,
            "description": f"{spec.description} Key: {spec.key}.",
            "messages": {
                _message_id(t): {"$ref": f"#/components/messages/{_message_id(t)}"}
                for t in _topic_types(spec.name)
            },
            "bindings": {
                "kafka": {
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact"] if spec.compacted else ["delete"]
                    },
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Jinan HK/MO/TW residence permits: events",
            "version": "1.0.0",
            "description": "Generated from services/common; do not edit by hand.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _message_id(event_type: str) -> str:
    return event_type.replace(".", "_")


def rendered(docs_dir: Path) -> dict[Path, str]:
    """Every generated file and its text."""
    files = {
        docs_dir / "events" / f"{event_type}.json": json.dumps(
            event_schema(event_type, model), ensure_ascii=False, indent=2, sort_keys=True
        )
        + "\n"
        for event_type, model in EVENT_MODELS.items()
    }
    files[docs_dir / "asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), allow_unicode=True, sort_keys=False, width=100
    )
    return files


def main(argv: list[str] | None = None) -> int:
    """Write or check the generated contract files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered(args.docs).items():
        current = path.read_text("utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
    if args.check and stale:
        print(
            "stale generated files (run python -m permits_common.events.schemas):", file=sys.stderr
        )
        for path in stale:
            print(f"  {path}", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(rendered(args.docs))} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
