#!/usr/bin/env bash
# Resolve the Java runtimes (Kafka, Cassandra, Spark connectors, Flink connector) from
# Maven Central into the jar cache. A component is fetched again only when its POM changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jars=${TICKLAKE_CACHE_DIR:-$HOME/.ticklake/cache}/jars
for pom in "$here"/maven/*/pom.xml; do
  name=$(basename "$(dirname "$pom")")
  stamp="$jars/$name/.pom.sha256"
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && continue
  echo "fetching $name jars from Maven Central ..." >&2
  rm -rf "$jars/$name"
  # Maven 3.8 prints colour resets (ESC[0m) even in quiet batch mode: strip them and the
  # empty lines they leave, so only Maven's real messages reach the terminal.
  mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$jars/$name" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2
  echo "$sum" > "$stamp"
done
