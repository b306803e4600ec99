#!/bin/sh
# kafka-server-start.sh server.properties: the broker in the foreground, logging to stdout.
: "${KAFKA_HEAP_OPTS:=-Xmx1G -Xms1G}"
export KAFKA_HEAP_OPTS
exec /opt/kafka/bin/kafka-run-class.sh kafka.Kafka "$@"
