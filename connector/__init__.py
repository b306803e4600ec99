"""zoom-kafka-connector: Zoom contact-center webhooks into Kafka as typed, trustworthy data."""

__version__ = "0.1.0"
