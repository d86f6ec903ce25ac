#!/usr/bin/env bash
# Everything a fresh machine needs before ticklake runs: Prometheus, Alertmanager and Chromium
# (Debian's packages, when missing), the Python environment (.venv), PyFlink's own environment
# (.venv-flink; apache-flink pins an old pyarrow that breaks pyiceberg, so it never shares
# .venv) and the Java jars. Each step is skipped when its inputs have not changed, so a second
# run takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
flink_version=2.0.2

fresh() { # stamp-file input-files...: true when the inputs changed since the stamp
  local stamp=$1; shift
  local sum; sum=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 1
  echo "$sum" > "$stamp.new"
}
done_stamp() { mv "$1.new" "$1"; }

# Debian packages, each only when its program is missing: Prometheus and Alertmanager, and
# Chromium, whose headless mode the chart test draws pages with.
missing=()
for program in prometheus prometheus-alertmanager chromium; do
  command -v "$program" >/dev/null || missing+=("$program")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages) ..." >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  # --no-install-recommends: no node exporter and friends. The packages' own services are not
  # used: 'ticklake up' runs both programs with their state under the state folder.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -x .venv/bin/python ]; then "$python" -m venv .venv; fi
if fresh .venv/.ticklake-stamp pyproject.toml; then
  echo "installing Python packages into .venv ..." >&2
  .venv/bin/pip install -q -e '.[test]'
  done_stamp .venv/.ticklake-stamp
fi

if [ ! -x .venv-flink/bin/python ]; then "$python" -m venv .venv-flink; fi
echo "$flink_version" > .venv-flink/.wanted
if fresh .venv-flink/.ticklake-stamp .venv-flink/.wanted; then
  echo "installing apache-flink $flink_version into .venv-flink ..." >&2
  .venv-flink/bin/pip install -q "apache-flink==$flink_version"
  done_stamp .venv-flink/.ticklake-stamp
fi

infra/fetch-jars.sh

# ticklake's jars on the Flink cluster's classpath, each compiled from a folder of infra/
# (java/ and META-INF/services/) against PyFlink's Flink and the jars named after it:
# - infra/flink-reporter: Flink's Prometheus reporter binds every address, this one a host
#   (loopback);
# - infra/flink-format: the trades' JSON read in one pass (the format ticklake-trade-json).
lib=${TICKLAKE_CACHE_DIR:-$HOME/.ticklake/cache}/jars/flink-lib
pyflink_lib=$(ls -d .venv-flink/lib/python3*/site-packages/pyflink/lib)
flink_jar() { # folder jar-name extra-classpath-jars...
  local folder=$1 name=$2; shift 2
  local sources; sources=$(find "$folder/java" -name '*.java' | sort)
  # shellcheck disable=SC2086
  if fresh "$lib/.$name-stamp" $sources "$folder"/META-INF/services/* "$@" .venv-flink/.wanted; then
    echo "building $name for Flink ..." >&2
    local build; build=$(mktemp -d)
    local classpath; classpath=$(ls "$@" "$pyflink_lib"/flink-dist-*.jar "$pyflink_lib"/flink-table-api-java-uber-*.jar | paste -sd:)
    # shellcheck disable=SC2086
    javac -nowarn --release 11 -d "$build" -cp "$classpath" $sources
    jar cf "$lib/$name" -C "$build" . -C "$folder" META-INF/services
    rm -rf "$build"
    done_stamp "$lib/.$name-stamp"
  fi
}
flink_jar infra/flink-reporter ticklake-loopback-reporter.jar "$lib"/flink-metrics-prometheus-*.jar
flink_jar infra/flink-format ticklake-trade-format.jar
