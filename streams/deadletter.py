"""Dead-letter records: the original bytes plus Kafka-Connect-style headers saying where and why."""

from __future__ import annotations

from dataclasses import dataclass

MAX_MESSAGE = 2000


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: BaseException
    stage: str  # "parse" or "apply"

    def headers(self) -> list[tuple[str, bytes]]:
        message = str(self.error)[:MAX_MESSAGE]
        return [
            ("__connect.errors.topic", self.topic.encode()),
            ("__connect.errors.partition", str(self.partition).encode()),
            ("__connect.errors.offset", str(self.offset).encode()),
            ("__connect.errors.stage", self.stage.encode()),
            ("__connect.errors.exception.class.name", _class_name(self.error).encode()),
            ("__connect.errors.exception.message", message.encode()),
        ]


def _class_name(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"
