#!/bin/sh
# kafka-storage.sh format|info|random-uuid ...: KRaft storage tool.
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
export KAFKA_HEAP_OPTS
exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
