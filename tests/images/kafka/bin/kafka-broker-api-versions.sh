#!/bin/sh
# kafka-broker-api-versions.sh --bootstrap-server HOST:PORT: the API versions each broker
# supports (used as a health check).
: "${KAFKA_HEAP_OPTS:=-Xmx128M}"
export KAFKA_HEAP_OPTS
KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties"
export KAFKA_LOG4J_OPTS
exec /opt/kafka/bin/kafka-run-class.sh org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
