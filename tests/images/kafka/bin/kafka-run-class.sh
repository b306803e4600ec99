#!/bin/sh
# kafka-run-class.sh CLASS [ARGS]: runs a Kafka class on the image's jars, with Kafka's
# KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS and KAFKA_OPTS.
set -e
main="$1"
shift
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:-} ${KAFKA_JVM_PERFORMANCE_OPTS} ${KAFKA_LOG4J_OPTS} ${KAFKA_OPTS:-} \
    -cp '/opt/kafka/libs/*' "$main" "$@"
