"""Topic names, derived from ``TOPIC_PREFIX`` as fixed in the interface."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicNames:
    """The connector's topics for one prefix (default ``zoom``)."""

    prefix: str = "zoom"

    @property
    def raw(self) -> str:
        return f"{self.prefix}.webhooks.raw"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.webhooks.dlq"

    @property
    def agent_scores(self) -> str:
        return f"{self.prefix}.agent_scores"

    def typed(self, event_type: str) -> str:
        """The typed topic of an event type: ``zoom.quality_management.evaluation_completed``."""
        return f"{self.prefix}.{event_type}"
