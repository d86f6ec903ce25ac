"""``ticklake``: the one command line for the things people do with the pipeline."""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from pathlib import Path
from datetime import datetime, timedelta, timezone

from jobs.options import BacktestOptions, MaintainOptions, RebuildOptions, RollupOptions
from schemas.models import BAR_COLUMNS, TRADE_COLUMNS
from ticklake import arguments
from ticklake.config import PROJECT_ROOT, Settings, config_file
from ticklake.errors import UserError
from ticklake.logs import configure_logging, run_log, say
from ticklake.output import FORMATS, SCHEDULE_COLUMNS, SNAPSHOT_COLUMNS, print_rows
from ticklake.submit import spark_submit
from ticklake.timeframes import RESAMPLED
from ticklake.times import shown


def _without_monitoring(settings: Settings) -> Settings:
    return settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"enabled": False})})


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services
    from ticklake.provision import provision

    if args.brokers:
        settings = Settings(kafka={"brokers": args.brokers})
    if args.no_monitoring:
        settings = _without_monitoring(settings)
    for st in services.up(settings, progress=say):
        say(f"{st.name}: running (pid {st.pid}, ports {st.ports}); log {st.log_file}")
    say("provisioning topics, keyspace, tables and lake tables ...")
    provision(settings)
    if settings.monitoring.enabled:
        say(f"health: {_console_url(settings)} (Prometheus), 'ticklake alerts --ops' (what is firing)")
    say("ready")
    return 0


def _console_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.monitoring.prometheus_port}/consoles/pipeline.html"


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services

    services.down(settings, wipe=args.wipe, progress=say)
    if args.wipe:
        from ticklake.provision import wipe_pipeline_state

        wipe_pipeline_state(settings)
        say(f"deleted checkpoints under {settings.spark.checkpoint_root} and the lake")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services

    statuses = services.status(settings)
    for st in statuses:
        state = f"running, pid {st.pid}" if st.running else "stopped"
        print(f"{st.name:14} {state:22} ports {st.ports}  log {st.log_file}  data {st.data_dir}")
    if any(st.name == "alert-receiver" and st.running for st in statuses):
        print(f"pipeline console: {_console_url(settings)}")
        try:
            _print_ops_alerts(settings)
        except UserError as error:
            print(error)
    return 0 if all(st.running for st in statuses) else 3


def _print_ops_alerts(settings: Settings) -> None:
    from ticklake.monitoring.receiver import ALERT_COLUMNS, firing

    try:
        alerts = firing(settings.monitoring.receiver_port)
    except OSError as error:
        raise UserError(f"{error}; 'ticklake up' starts it") from None
    if not alerts:
        print("no alerts firing")
        return
    print(f"{len(alerts)} alert{'s' if len(alerts) > 1 else ''} firing:")
    print_rows(alerts, ALERT_COLUMNS)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print(settings.model_dump_json(indent=2))  # SecretStr prints as '**********'
    return 0


def cmd_cqlshrc(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import security

    text = security.cqlshrc(settings)  # first: it checks the CA file
    if security.enabled(settings):
        say(f"wrote the password of role {settings.security.cassandra_app.username!r} for cqlsh to "
                  f"{security.write_cqlsh_credentials(settings)}")
    print(text, end="")
    return 0


def cmd_feed(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.tools.feed import FeedOptions, run_feed

    options = FeedOptions(
        rate=args.rate or settings.feed.trades_per_second, max_trades=args.max_trades, seed=settings.feed.seed,
        history_minutes=args.history_minutes, speed=args.speed, max_symbols=args.max_symbols,
        max_trades_per_frame=args.trades_per_frame, replay_file=args.replay,
        drop_every_s=args.drop_every, stall_every_s=args.stall_every, stall_for_s=args.stall_for,
        malformed_ratio=args.malformed_ratio, error_ratio=args.error_ratio,
        events_every_minutes=args.events_every,
    )
    run_feed(settings, host=args.host, port=args.port, options=options)
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from producers.producer import run_producer_sync

    stats = run_producer_sync(settings, url=args.url, max_trades=args.max_trades, idle_timeout=args.idle_timeout,
                              replay=args.replay)
    say(f"producer stopped: {stats}")
    return 0


def cmd_record(settings: Settings, args: argparse.Namespace) -> int:
    from producers.producer import run_producer_sync

    stats = run_producer_sync(settings, url=args.url, max_trades=args.max_trades, idle_timeout=args.idle_timeout,
                              record_to=args.out)
    say(f"recorded {stats.frames} frames ({stats.trades_sent} trades) to {args.out}")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from producers.replay import replay

    stats = replay(settings, args.file, frames_per_second=args.rate)
    say(f"replayed {args.file}: {stats}")
    return 0 if stats.delivery_errors == 0 else 1


def cmd_stream(settings: Settings, args: argparse.Namespace) -> int:
    """The streaming job: locally, the bars in one application and the stores (raw trades, lake) in
    a second at a lower priority (docs/ARCHITECTURE.md); one application for a bounded run, on a
    cluster, or with --one-app."""
    from contextlib import ExitStack

    from ticklake.monitoring.targets import announced
    from ticklake.submit import spark_submit_together

    extra = ("--available-now",) if args.available_now else ()
    master = settings.spark.standalone_master_url if args.master == "local-cluster" else args.master
    spark_args = ("--master", master) if master else ()
    spark = settings.spark
    if args.available_now or args.one_app or master:  # a cluster shares its cores its own way
        runs = [(settings, "jobs/ohlcv_stream.py", extra, 0)]
    else:
        stores = settings.model_copy(update={"spark": spark.model_copy(update={"metrics_port": spark.stores_metrics_port})})
        runs = [(settings, "jobs/ohlcv_stream.py", (*extra, "--queries", "bars"), 0),
                (stores, "jobs/ohlcv_stream.py", (*extra, "--queries", "trades,lake"), spark.stores_niceness)]
    # The drivers run here (client mode) and serve the metrics: announced while they run.
    with ExitStack() as stack:
        for run_settings, *_ in runs:
            stack.enter_context(announced(settings, "stream", spark.metrics_host, run_settings.spark.metrics_port))
        spark_submit_together(runs, spark_args)
    return 0


def cmd_cluster(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services

    if args.action == "up":
        for st in services.up(settings, progress=say, cluster=True):
            say(f"{st.name}: running (pid {st.pid}, ports {st.ports}); log {st.log_file}")
        say(f"submit with --master {settings.spark.standalone_master_url}; "
                  f"web UI http://127.0.0.1:{settings.spark.master_ui_port}")
        return 0
    if args.action == "down":
        services.down(settings, progress=say, cluster=True)
        return 0
    statuses = services.status(settings, cluster=True)
    for st in statuses:
        print(f"{st.name:13} {'running, pid ' + str(st.pid) if st.running else 'stopped':22} ports {st.ports}  "
              f"log {st.log_file}")
    return 0 if all(st.running for st in statuses) else 3


def _parse_time(text: str) -> datetime:
    from ticklake.times import parse_time

    try:
        return parse_time(text)
    except ValueError as error:
        raise UserError(str(error)) from None


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import query

    end = _parse_time(args.end) if args.end else datetime.now(timezone.utc)
    start = _parse_time(args.start) if args.start else end - timedelta(hours=1)
    arguments.check_range(start, end)
    if args.as_of or args.timeframe != "1m":
        from ticklake import lake_query

        rows = lake_query.read(settings, args.what, args.symbol, start, end, as_of=args.as_of,
                               timeframe=args.timeframe, limit=args.limit if args.what == "trades" else None)
    elif args.what == "bars":
        rows = query.bars(settings, args.symbol, start, end)
    else:
        rows = query.trades(settings, args.symbol, start, end, limit=args.limit)
    if not rows:
        known = settings.producer.symbols
        hint = "" if args.symbol in known else f"; {args.symbol} is not one of the configured symbols ({', '.join(known)})"
        say(f"no {args.what} of {args.symbol} from {shown(start)} to {shown(end)}{hint}")
        return 1
    print_rows(rows, BAR_COLUMNS if args.what == "bars" else TRADE_COLUMNS, args.format)
    return 0


def cmd_chart(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.chart import write_chart

    end = _parse_time(args.end) if args.end else datetime.now(timezone.utc)
    start = _parse_time(args.start) if args.start else end - timedelta(hours=1)
    arguments.check_range(start, end)
    path, candles = write_chart(settings, args.symbol, start, end, args.timeframe, args.as_of, args.out)
    say(f"chart of {candles} {args.timeframe} bars of {args.symbol}: {path}")
    return 0


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write FIELD=COLUMN, e.g. window_start=Date")
    return name.strip(), value.strip()


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.history import ImportOptions, import_file

    options = ImportOptions(args.what, args.file, dict(args.map), args.symbol, args.time_zone, args.time_unit,
                            args.timeframe, args.rejects)
    result = import_file(settings, options)
    for where, reason in result.first_rejects:
        say(f"rejected {where}: {reason}")
    more = f" (the first {len(result.first_rejects)} above)" if result.rejected > len(result.first_rejects) else ""
    rejected = f"; {result.rejected} rejected{more}, all in {result.rejects_file}" if result.rejected else ""
    say(f"imported {result.imported} of {result.rows} {args.what} into {result.table}{rejected}")
    if args.what == "trades" and result.imported and not args.no_rebuild:
        say(f"rebuilding the 1-minute bars of {', '.join(result.symbols)} "
                  f"from {shown(result.start)} to {shown(result.end)} ...")
        spark_submit(settings, "jobs/rebuild_bars.py", *RebuildOptions(result.start, result.end, result.symbols).to_argv())
    return 1 if result.rejected else 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.history import export_file

    start = _parse_time(args.start) if args.start else None
    end = _parse_time(args.end) if args.end else None
    if start and end:
        arguments.check_range(start, end)
    count = export_file(settings, args.what, args.file, args.symbol, start, end, args.timeframe, args.as_of)
    say(f"exported {count} {args.what} to {args.file}")
    return 0 if count else 1


def cmd_snapshots(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import lake_query

    print_rows(lake_query.snapshots(settings, args.what, args.timeframe), SNAPSHOT_COLUMNS)
    return 0


def cmd_maintain(settings: Settings, args: argparse.Namespace) -> int:
    spark_submit(settings, "jobs/maintain_lake.py", *MaintainOptions.from_args(settings, args).to_argv())
    return 0


def cmd_rollup(settings: Settings, args: argparse.Namespace) -> int:
    spark_submit(settings, "jobs/rollup_bars.py", *RollupOptions.from_args(settings, args).to_argv())
    return 0


def cmd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import schedule

    plan = settings.schedule
    if args.action == "list":
        print_rows(schedule.overview(plan, datetime.now(timezone.utc)), SCHEDULE_COLUMNS)
    elif args.action == "run":
        schedule.serve(settings)
    elif args.action == "exec":
        run = schedule.run_now(schedule.job_named(plan, args.job), plan.log_dir)
        return 0 if run.outcome == "success" else run.exit_code if run.exit_code and run.exit_code > 0 else 1
    elif args.action == "crontab":
        print(schedule.crontab(plan, config_file()), end="")
    else:
        from ticklake.k8s import manifests

        print(manifests(plan), end="")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.demo import run_demo

    return run_demo(settings, trades=args.trades, progress=say)


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import bench

    if args.trades is None:
        args.trades = 1_000_000 if args.what in ("producer", "flink") else 5_000_000
    if args.what == "producer":
        from ticklake.topics import ensure_topics

        ensure_topics(settings)
        result = bench.bench_producer(settings, args.trades, args.trades_per_frame, say)
    elif args.what == "stream":
        from ticklake import stream_bench

        bars_trigger = settings.spark.bars_trigger_seconds if args.bars_trigger_seconds is None else args.bars_trigger_seconds
        spark = settings.spark
        result = {"settings": {"bars_trigger_seconds": bars_trigger, "trigger_seconds": spark.trigger_seconds,
                               "lake_trigger_seconds": spark.lake_trigger_seconds, "master": spark.master,
                               "shuffle_partitions": spark.shuffle_partitions, "driver_memory": spark.driver_memory,
                               "kafka_fetch_max_wait_ms": spark.kafka_fetch_max_wait_ms}}
        if args.trades:
            result |= stream_bench.bench_backlog(settings, args.trades, say, floor=args.floor)
        if args.seconds:
            result |= stream_bench.bench_latency(settings, args.rate, args.seconds, bars_trigger,
                                                  args.warmup_seconds, say, floor=args.floor,
                                                  split=not args.one_app)
    elif args.what == "flink":
        from ticklake import flink_bench

        if args.floor:
            settings = flink_bench.without_rules(settings)
        f = settings.flink
        result = {"settings": {"floor": args.floor, "checkpoint_interval_ms": f.checkpoint_interval_ms, "mini_batch_ms": f.mini_batch_ms,
                               "watermark_interval_ms": f.watermark_interval_ms, "buffer_timeout_ms": f.buffer_timeout_ms,
                               "parallelism": f.parallelism, "heap": f.heap, "rate": args.rate,
                               "seconds": args.seconds, "warmup_seconds": args.warmup_seconds,
                               "with_stream": args.with_stream}}
        phases = []
        if args.seconds:
            phases += [functools.partial(flink_bench.bench_latency, settings, guarantee, args.rate, args.seconds,
                                         args.warmup_seconds, say, with_stream=args.with_stream)
                       for guarantee in ("exactly-once", "at-least-once")]
        if args.trades:
            phases.append(functools.partial(flink_bench.bench_backlog, settings, args.trades, say,
                                            with_stream=args.with_stream))
        for phase in phases:
            figures = phase()
            say(json.dumps(figures))  # each phase's figures as it ends, in case a later one fails
            result |= figures
    elif args.what == "backtest":
        from ticklake.backtest.bench import bench_backtest

        result = bench_backtest(settings, args.days, say)
    print(json.dumps({"benchmark": args.what, "machine": bench.machine(), **result}, indent=2))
    return 0


def cmd_flink_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.flink_runner import run_flink_smoke

    result = run_flink_smoke(settings, PROJECT_ROOT / "build" / "flink-smoke.json")
    print(json.dumps(result, indent=2))
    return 0


def cmd_flink(settings: Settings, args: argparse.Namespace) -> int:
    from jobs import flink_live

    from ticklake.monitoring.targets import announce, targets_dir, withdraw

    if args.action == "start":
        st = flink_live.start(settings)
        if settings.flink.metrics_port:  # Prometheus scrapes Flink's reporter until the job's stop
            announce(settings, "flink", settings.flink.metrics_host, settings.flink.metrics_port, until_exit=False)
        say(f"real-time job running (pid {st.pid}); REST http://127.0.0.1:{settings.flink.rest_port}, "
                  f"log {st.log}")
    elif args.action == "stop":
        say(f"real-time job: {flink_live.stop(settings)}")
        withdraw(targets_dir(settings, "flink") / f"{settings.flink.metrics_port}.json")
    elif args.action == "logs":
        print(flink_live.log_tail(settings, args.lines))
    elif args.action == "explain":
        print(flink_live.explain(settings))
    else:
        st = flink_live.status(settings)
        if not st.running:
            print(f"real-time job stopped; resumes from {flink_live.newest_snapshot(settings) or 'the start'}")
            return 3
        job = st.job or {}
        checkpoint = st.checkpoint or {}
        print(f"real-time job {job.get('state', 'starting')}, pid {st.pid}, job id {job.get('jid')}; "
              f"last checkpoint {checkpoint.get('id')} ({checkpoint.get('external_path')}); log {st.log}")
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import live
    from ticklake.output import print_rows

    if args.ops:  # the pipeline's own health, from Alertmanager
        _print_ops_alerts(settings)
        return 0
    since = _parse_time(args.since) if args.since else None
    alerts = live.alerts(settings, since=since, follow=args.follow)
    columns = live.ALERT_JSON_COLUMNS if args.format == "json" else live.ALERT_COLUMNS
    if args.follow:  # each alert as it comes, a header first for csv and table
        header = args.format != "json"
        for alert in alerts:
            print_rows([alert], columns, args.format, header=header)
            header = False
            sys.stdout.flush()
        return 0
    rows = list(alerts)
    if not rows:
        say(f"no alerts in {settings.flink.alerts_topic}" + (f" since {shown(since)}" if since else ""))
        return 1
    print_rows(rows, columns, args.format)
    return 0


def cmd_backtest(settings: Settings, args: argparse.Namespace) -> int:
    options = BacktestOptions.from_args(settings, args)  # every check before Spark starts
    checked = options.checked
    say(f"{len(checked.param_sets)} parameter sets × {len(checked.request.symbols)} symbols "
        f"on {checked.bars_identifier} snapshot {checked.snapshot_id}")
    spark_submit(settings, "jobs/backtest.py", *options.to_argv())
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The command line; ``settings`` give the defaults that come from the configuration."""
    parser = argparse.ArgumentParser(prog="ticklake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start local Kafka, Cassandra and the monitoring, and provision topics and tables")
    up.add_argument("--no-monitoring", action="store_true",
                    help="leave out Prometheus, Alertmanager and the alert receiver (setting monitoring.enabled)")
    up.add_argument("--brokers", type=int, default=None,
                    help="Kafka brokers of the local KRaft cluster (setting kafka.brokers; 3: topics with "
                         "3 replicas, 2 in sync); set TICKLAKE_KAFKA__BROKERS for the other commands too")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the local services started by 'up'")
    down.add_argument("--wipe", action="store_true",
                      help="also delete their data, the Spark checkpoints and the lake")
    down.set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs, where, ports and log files").set_defaults(func=cmd_status)
    sub.add_parser("config", help="print the effective configuration (secrets hidden)").set_defaults(func=cmd_config)
    sub.add_parser("cqlshrc", help="print a cqlshrc for these settings (secure profile: TLS, the pipeline's role, "
                   "its password in a credentials file beside the other secrets)").set_defaults(func=cmd_cqlshrc)

    feed = sub.add_parser("feed", help="run the local Finnhub-compatible WebSocket feed")
    feed.add_argument("--host", default=None)
    feed.add_argument("--port", type=int, default=None)
    feed.add_argument("--rate", type=float, default=None, help="trades per second")
    feed.add_argument("--max-trades", type=int, default=None, help="stop sending after this many trades")
    feed.add_argument("--history-minutes", type=float, default=0.0,
                      help="start the market clock this many minutes in the past")
    feed.add_argument("--speed", type=float, default=1.0, help="market minutes per wall-clock minute")
    feed.add_argument("--max-symbols", type=int, default=50, help="refuse subscriptions beyond this many")
    feed.add_argument("--trades-per-frame", type=int, default=8, help="at most this many trades in one frame")
    feed.add_argument("--replay", type=Path, help="send the frames of this recording (as 'ticklake record' writes)")
    feed.add_argument("--events-every", type=float, default=0.0, metavar="MINUTES",
                      help="a market event (price shock, failed rally, volume burst) every this many market "
                           "minutes, symbols in turn (default: none)")
    faults = feed.add_argument_group("fault injection")
    faults.add_argument("--drop-every", type=float, help="close each connection after this many seconds")
    faults.add_argument("--stall-every", type=float, help="go silent every this many seconds ...")
    faults.add_argument("--stall-for", type=float, default=0.0, help="... for this many seconds")
    faults.add_argument("--malformed-ratio", type=float, default=0.0, help="share of frames that are not JSON")
    faults.add_argument("--error-ratio", type=float, default=0.0, help="share of frames that are error frames")
    feed.set_defaults(func=cmd_feed)

    produce = sub.add_parser("produce", help="read trades from a Finnhub WebSocket and write them to Kafka")
    produce.add_argument("--url", default=None, help="feed URL (default: producer.url setting; token from FINNHUB_TOKEN)")
    produce.add_argument("--max-trades", type=int, default=None, help="stop after producing this many trades")
    produce.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without trades")
    produce.add_argument("--replay", action="store_true",
                         help="the feed serves a recording: keep its trade times (no clock-skew check)")
    produce.set_defaults(func=cmd_produce)

    record = sub.add_parser("record", help="write every raw frame of a Finnhub WebSocket to a file (NDJSON)")
    record.add_argument("--out", type=Path, required=True)
    record.add_argument("--url", default=None, help="feed URL (default: producer.url setting)")
    record.add_argument("--max-trades", type=int, default=None, help="stop after this many trades")
    record.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without frames")
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser("replay", help="publish a recording into Kafka through validation and dead letters")
    replay.add_argument("file", type=Path)
    replay.add_argument("--rate", type=float, default=None, help="frames per second (default: as fast as it can)")
    replay.set_defaults(func=cmd_replay)

    stream = sub.add_parser("stream", help="run the Spark streaming job (spark-submit.sh jobs/ohlcv_stream.py)")
    stream.add_argument("--available-now", action="store_true", help="process what is in Kafka, then exit")
    stream.add_argument("--one-app", action="store_true",
                        help="run all queries in one Spark application (default on local[*]: the bars in one, the "
                             "stores in a second at lower priority, so that nothing competes with the bars)")
    stream.add_argument("--master", default=None,
                        help="Spark master URL (default local[*]); 'local-cluster' for the one of 'ticklake cluster up'")
    stream.set_defaults(func=cmd_stream)

    cluster = sub.add_parser("cluster", help="a local Spark standalone master and worker (up, down, status)")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.set_defaults(func=cmd_cluster)

    query = sub.add_parser("query", help="time-range query of bars or trades: Cassandra (CQL), or the lake "
                                         "with --as-of or --timeframe")
    query.add_argument("what", choices=["bars", "trades"])
    query.add_argument("symbol", type=arguments.symbol, help="e.g. AAPL or BINANCE:BTCUSDT")
    query.add_argument("--start", help="ISO time, UTC unless it has an offset, or now-6h (default: end - 1 hour)")
    query.add_argument("--end", help="ISO time or now-... (default: now)")
    query.add_argument("--format", choices=FORMATS, default="table", help="table, csv, or json (one object a line)")
    query.add_argument("--limit", type=arguments.positive, default=1000, help="trades: at most this many rows")
    query.add_argument("--as-of", metavar="TIME_OR_SNAPSHOT",
                       help="read the lake as it was at this ISO time or snapshot id (time travel)")
    query.add_argument("--timeframe", default="1m", help="bars: 1m, or a rolled-up timeframe read from the lake (5m, 1h, 1d)")
    query.set_defaults(func=cmd_query)

    chart = sub.add_parser("chart", help="a candlestick chart with volume of a symbol's bars, as one HTML file")
    chart.add_argument("symbol", type=arguments.symbol, help="e.g. AAPL or BINANCE:BTCUSDT")
    chart.add_argument("--start", help="ISO time, UTC unless it has an offset, or now-6h (default: end - 1 hour)")
    chart.add_argument("--end", help="ISO time or now-... (default: now)")
    chart.add_argument("--timeframe", default="1m", choices=RESAMPLED,
                       help="candles of this length, from the 1-minute bars")
    chart.add_argument("--as-of", metavar="TIME_OR_SNAPSHOT",
                       help="the lake's bars as they were at this ISO time or snapshot id (default: Cassandra's)")
    chart.add_argument("--out", type=Path, help="the HTML file (default: <state_dir>/charts/SYMBOL-TIMEFRAME-START.html)")
    chart.set_defaults(func=cmd_chart)

    imp = sub.add_parser("import", help="bars or trades from a CSV or Parquet file into the lake (trades: and "
                                        "their 1-minute bars rebuilt)")
    imp.add_argument("what", choices=["bars", "trades"])
    imp.add_argument("file", type=Path, help=".csv (a header line first) or .parquet")
    imp.add_argument("--map", action="append", type=_key_value, default=[], metavar="FIELD=COLUMN",
                     help="the file's column for a field, where the default names do not fit (repeat)")
    imp.add_argument("--symbol", type=arguments.symbol, help="the symbol of every row, for files without one")
    imp.add_argument("--time-zone", default="UTC", help="of times without an offset (e.g. America/New_York)")
    imp.add_argument("--time-unit", default="iso", choices=["iso", "s", "ms", "us", "ns"],
                     help="times as ISO text, or numbers of this unit since 1970")
    imp.add_argument("--timeframe", default="1m", help="bars: their length; 1m, or a rolled-up one (5m, 1h, 1d)")
    imp.add_argument("--rejects", type=Path,
                     help="where rejected rows go (default: <state_dir>/imports/FILE.rejected.csv)")
    imp.add_argument("--no-rebuild", action="store_true", help="trades: leave the bars as they are")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="bars or trades from the lake into a CSV or Parquet file")
    exp.add_argument("what", choices=["bars", "trades"])
    exp.add_argument("file", type=Path, help=".csv or .parquet")
    exp.add_argument("--symbol", action="append", default=[], type=arguments.symbol,
                     help="repeat for several; default: all")
    exp.add_argument("--start", help="ISO time or now-... (default: the first)")
    exp.add_argument("--end", help="ISO time or now-..., excluded (default: after the last)")
    exp.add_argument("--timeframe", default="1m", help="bars: 1m, or a rolled-up timeframe (5m, 1h, 1d)")
    exp.add_argument("--as-of", metavar="TIME_OR_SNAPSHOT", help="the lake as it was at this ISO time or snapshot id")
    exp.set_defaults(func=cmd_export)

    snapshots = sub.add_parser("snapshots", help="the lake table's snapshots (ids and times for --as-of)")
    snapshots.add_argument("what", choices=["bars", "trades"])
    snapshots.add_argument("--timeframe", default="1m")
    snapshots.set_defaults(func=cmd_snapshots)

    maintain = sub.add_parser("maintain", help="compact, expire snapshots, remove orphans in the lake "
                                               "(spark-submit.sh jobs/maintain_lake.py)")
    MaintainOptions.add_arguments(maintain, settings)
    maintain.set_defaults(func=cmd_maintain)

    rollup = sub.add_parser("rollup", help="5-minute, hourly and daily bars from the lake's 1-minute bars "
                                           "(spark-submit.sh jobs/rollup_bars.py)")
    RollupOptions.add_arguments(rollup, settings)
    rollup.set_defaults(func=cmd_rollup)

    sched = sub.add_parser("schedule", help="scheduled jobs of [[schedule.jobs]]: list, run, exec, crontab, k8s")
    actions = sched.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="each job's cron line, next run and last outcome")
    actions.add_parser("run", help="the local scheduler in the foreground (metrics on schedule.metrics_port)")
    run_one = actions.add_parser("exec", help="run one job now, logged like a scheduled run")
    run_one.add_argument("job")
    actions.add_parser("crontab", help="print equivalent crontab lines")
    actions.add_parser("k8s", help="print Kubernetes CronJob manifests")
    sched.set_defaults(func=cmd_schedule)

    demo = sub.add_parser("demo", help="run the whole pipeline end to end on the local feed")
    demo.add_argument("--trades", type=arguments.positive, default=20_000, help="trades the feed sends (default 20,000)")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="run a benchmark and print its figures")
    bench.add_argument("what", choices=["producer", "stream", "backtest", "flink"])
    bench.add_argument("--trades", type=int, default=None,
                       help="trades to push through (producer, flink backlog: 1,000,000; stream backlog: 5,000,000; "
                            "0 skips it)")
    bench.add_argument("--trades-per-frame", type=int, default=50, help="producer: trades per feed frame")
    bench.add_argument("--rate", type=float, default=5000, help="stream, flink latency: trades per second")
    bench.add_argument("--seconds", type=float, default=180, help="stream, flink latency: how long (0 skips it)")
    bench.add_argument("--bars-trigger-seconds", type=float, default=None,
                       help="stream latency: the bars query's trigger (default: spark.bars_trigger_seconds)")
    bench.add_argument("--floor", action="store_true",
                       help="stream: measure the smallest job doing the same work instead (ticklake/stream_floor.py); "
                            "flink: the real-time job without its alert rules (live bars and rejects only)")
    bench.add_argument("--one-app", action="store_true",
                       help="stream latency: all queries in one application (default: bars and stores apart, "
                            "as ticklake stream runs them)")
    bench.add_argument("--warmup-seconds", type=float, default=300,
                       help="stream, flink latency: load before the measured trades (JIT warm-up, catching up)")
    bench.add_argument("--with-stream", action="store_true",
                       help="flink: the Spark job (ticklake stream) runs beside it over the same trades")
    bench.add_argument("--days", type=int, default=252, help="backtest: trading days of 1-minute bars per symbol")
    bench.set_defaults(func=cmd_bench)

    sub.add_parser("flink-smoke", help="run the PyFlink smoke job over the trades topic").set_defaults(func=cmd_flink_smoke)
    flink = sub.add_parser("flink", help="the real-time PyFlink job (live bars, alerts): start, stop, status, logs, "
                                         "explain (its execution plan)")
    flink.add_argument("action", choices=["start", "stop", "status", "logs", "explain"])
    flink.add_argument("--lines", type=int, default=50, help="logs: lines from the end of each log")
    flink.set_defaults(func=cmd_flink)

    alerts = sub.add_parser("alerts", help="market alerts of the real-time job (committed ones only); "
                                           "--ops for the operations alerts Alertmanager reports")
    alerts.add_argument("--ops", action="store_true", help="the pipeline's operations alerts that are firing")
    alerts.add_argument("--follow", action="store_true", help="keep printing new alerts as they come")
    alerts.add_argument("--since", help="alerts from this event time on: ISO, or now-90m, now-6h")
    alerts.add_argument("--format", choices=FORMATS, default="table", help="table, csv, or json (one object a line)")
    alerts.set_defaults(func=cmd_alerts)
    add_backtest_parser(sub, settings)
    verbose = "the full output of the Spark jobs and their helpers on the terminal (always in the run log)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose)
    for command in LOGGED:  # also after the command's name
        sub.choices[command].add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                          help=verbose)
    return parser


def add_backtest_parser(sub, settings: Settings) -> None:
    backtest = sub.add_parser("backtest", help="backtest a strategy over the lake's bars, sweeping parameters "
                                               "(Spark job jobs/backtest.py; docs/BACKTESTS.md)")
    BacktestOptions.add_arguments(backtest, settings)
    backtest.set_defaults(func=cmd_backtest)


# Commands that run Spark jobs (import: to rebuild bars): quiet on the terminal, their full output in a run log.
LOGGED = ("demo", "backtest", "stream", "rollup", "maintain", "import", "bench")


def main(argv: list[str] | None = None) -> int:
    from ticklake.services import ServiceError

    settings = Settings()  # once per command: the parser's defaults and the command's work use the same
    args = build_parser(settings).parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.command in LOGGED:
            log = stack.enter_context(run_log(settings.state_dir, args.command, args.verbose))
            stack.callback(lambda: say(f"full log: {log.path}"))
        configure_logging()
        try:
            return args.func(settings, args)
        except (UserError, ServiceError) as error:
            say(f"error: {error}")
            return 2
        except BrokenPipeError:  # output piped into head & co.
            return 0
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
