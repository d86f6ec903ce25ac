#!/usr/bin/env bash
# Submit a ticklake job to Spark: ./spark-submit.sh [spark-submit options] jobs/<job>.py [job options]
#
# Adds the connector jars (Kafka, Cassandra, Iceberg, SQLite JDBC) from the jar cache and
# ships jobs/, schemas/ and ticklake/ as one zip through --py-files, so the same command
# runs on local[*] (the default) and on a cluster: ./spark-submit.sh --master spark://host:7077 ...
# Configuration comes from conf/ and TICKLAKE_* variables, as everywhere in ticklake.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
[ -x "$root/.venv/bin/python" ] || "$root/infra/bootstrap.sh"
jars_dir=${TICKLAKE_CACHE_DIR:-$HOME/.ticklake/cache}/jars/spark
[ -d "$jars_dir" ] || "$root/infra/fetch-jars.sh"
jars=$(ls "$jars_dir"/*.jar | paste -sd, -)

zip="$root/build/ticklake-pyfiles.zip"
mkdir -p "$root/build"
# Written aside and renamed: jobs started together (the streaming job's two applications) must
# not read a zip another is writing.
(cd "$root" && "$root/.venv/bin/python" - "$zip" <<'PY'
import os, pathlib, sys, zipfile
partial = f"{sys.argv[1]}.{os.getpid()}"
with zipfile.ZipFile(partial, "w") as z:
    for package in ("jobs", "schemas", "ticklake"):
        for path in sorted(pathlib.Path(package).rglob("*.py")):
            z.write(path)
os.replace(partial, sys.argv[1])
PY
)

master=()
case " $* " in
  *" --master "*) ;;
  *) master=(--master "local[*]"); export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1} ;;
esac

# The job reads the same configuration file as the caller, wherever the code runs from.
config=${TICKLAKE_CONFIG:-conf/ticklake.toml}
case "$config" in /*) ;; *) [ -f "$config" ] || config="$root/$config" ;; esac
export TICKLAKE_CONFIG=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$root/.venv/bin/python}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$root/.venv/bin/python}
# Run by ticklake with a run log: Spark's warnings on the console, the rest into that file.
# Spark's routine start-up warnings go to the file only, unless --verbose (console level info).
if [ -n "${TICKLAKE_JOB_LOG:-}" ]; then
  if [ "${TICKLAKE_JOB_CONSOLE_LEVEL:-warn}" = info ]; then
    startup="-Dticklake.startup.console=trace -Dticklake.startup.file=off"
  else
    startup="-Dticklake.startup.console=error -Dticklake.startup.file=trace"
  fi
  export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:-} -Dlog4j2.configurationFile=$root/infra/spark/log4j2.properties $startup"
fi
cd "$root"
exec "$root/.venv/bin/spark-submit" "${master[@]}" \
  --driver-memory "${TICKLAKE_SPARK__DRIVER_MEMORY:-2g}" \
  --jars "$jars" --py-files "$zip" \
  --conf spark.ui.showConsoleProgress=false \
  "$@"
