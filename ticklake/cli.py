"""``ticklake``: the one command line for the things people do with the pipeline."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from datetime import datetime, timedelta, timezone

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.logs import configure_logging
from ticklake.output import BAR_COLUMNS, TRADE_COLUMNS, print_rows
from ticklake.submit import spark_submit


def _progress(message: str) -> None:
    print(f"[ticklake] {message}", file=sys.stderr, flush=True)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services
    from ticklake.provision import provision

    for st in services.up(settings, progress=_progress):
        _progress(f"{st.name}: running (pid {st.pid}, ports {st.ports}); log {st.log_file}")
    _progress("provisioning topics, keyspace, tables and lake tables ...")
    provision(settings)
    _progress("ready")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services

    services.down(settings, wipe=args.wipe, progress=_progress)
    if args.wipe:
        from ticklake.provision import wipe_pipeline_state

        wipe_pipeline_state(settings)
        _progress(f"deleted checkpoints under {settings.spark.checkpoint_root} and the lake")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import services

    statuses = services.status(settings)
    for st in statuses:
        state = f"running, pid {st.pid}" if st.running else "stopped"
        print(f"{st.name:10} {state:22} ports {st.ports}  log {st.log_file}  data {st.data_dir}")
    return 0 if all(st.running for st in statuses) else 3


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print(settings.model_dump_json(indent=2))  # SecretStr prints as '**********'
    return 0


def cmd_feed(settings: Settings, args: argparse.Namespace) -> int:
    from producers.feed import run_feed

    from producers.feed import FeedOptions

    options = FeedOptions(
        rate=args.rate or settings.feed.trades_per_second, max_trades=args.max_trades, seed=settings.feed.seed,
        history_minutes=args.history_minutes, speed=args.speed, max_symbols=args.max_symbols,
        max_trades_per_frame=args.trades_per_frame, replay_file=args.replay,
        drop_every_s=args.drop_every, stall_every_s=args.stall_every, stall_for_s=args.stall_for,
        malformed_ratio=args.malformed_ratio, error_ratio=args.error_ratio,
    )
    run_feed(settings, host=args.host, port=args.port, options=options)
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from producers.producer import run_producer_sync

    stats = run_producer_sync(settings, url=args.url, max_trades=args.max_trades, idle_timeout=args.idle_timeout,
                              replay=args.replay)
    _progress(f"producer stopped: {stats}")
    return 0


def cmd_record(settings: Settings, args: argparse.Namespace) -> int:
    from producers.producer import run_producer_sync

    stats = run_producer_sync(settings, url=args.url, max_trades=args.max_trades, idle_timeout=args.idle_timeout,
                              record_to=args.out)
    _progress(f"recorded {stats.frames} frames ({stats.trades_sent} trades) to {args.out}")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from producers.replay import replay

    stats = replay(settings, args.file, frames_per_second=args.rate)
    _progress(f"replayed {args.file}: {stats}")
    return 0 if stats.delivery_errors == 0 else 1


def cmd_stream(settings: Settings, args: argparse.Namespace) -> int:
    extra = ["--available-now"] if args.available_now else []
    spark_submit(settings, "jobs/ohlcv_stream.py", *extra)
    return 0


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import query

    end = _parse_time(args.end) if args.end else datetime.now(timezone.utc)
    start = _parse_time(args.start) if args.start else end - timedelta(hours=1)
    if start >= end:
        raise UserError(f"--start {start} is not before --end {end}")
    if args.what == "bars":
        print_rows(query.bars(settings, args.symbol, start, end), BAR_COLUMNS)
    else:
        print_rows(query.trades(settings, args.symbol, start, end, limit=args.limit), TRADE_COLUMNS)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.demo import run_demo

    return run_demo(settings, trades=args.trades, progress=_progress)


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake import bench

    if args.what == "producer":
        from ticklake.provision import ensure_topics

        ensure_topics(settings)
        result = bench.bench_producer(settings, args.trades, args.trades_per_frame, _progress)
    elif args.what == "backtest":
        from ticklake.backtest.bench import bench_backtest

        result = bench_backtest(settings, args.days, _progress)
    print(json.dumps({"benchmark": args.what, "machine": bench.machine(), **result}, indent=2))
    return 0


def cmd_flink_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.flink_runner import run_flink_smoke

    result = run_flink_smoke(settings, PROJECT_ROOT / "build" / "flink-smoke.json")
    print(json.dumps(result, indent=2))
    return 0


def cmd_backtest(settings: Settings, args: argparse.Namespace) -> int:
    from ticklake.backtest import request, store

    checked = store.check(settings, request.from_args(args))  # every check before Spark starts
    _progress(f"{len(checked.param_sets)} parameter sets × {len(checked.request.symbols)} symbols "
              f"on {checked.bars_identifier} snapshot {checked.snapshot_id}")
    spark_submit(settings, "jobs/backtest.py", *checked.request.to_argv())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticklake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="start local Kafka and Cassandra and provision topics and tables").set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the local services started by 'up'")
    down.add_argument("--wipe", action="store_true",
                      help="also delete their data, the Spark checkpoints and the lake")
    down.set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs, where, ports and log files").set_defaults(func=cmd_status)
    sub.add_parser("config", help="print the effective configuration (secrets hidden)").set_defaults(func=cmd_config)

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
    stream.set_defaults(func=cmd_stream)

    query = sub.add_parser("query", help="time-range query of bars or trades in Cassandra (CQL)")
    query.add_argument("what", choices=["bars", "trades"])
    query.add_argument("--symbol", required=True)
    query.add_argument("--start", help="ISO time, UTC unless it has an offset (default: end - 1 hour)")
    query.add_argument("--end", help="ISO time (default: now)")
    query.add_argument("--limit", type=int, default=1000, help="trades: at most this many rows")
    query.set_defaults(func=cmd_query)

    demo = sub.add_parser("demo", help="run the whole pipeline end to end on the local feed")
    demo.add_argument("--trades", type=int, default=20_000)
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="run a benchmark and print its figures")
    bench.add_argument("what", choices=["producer", "backtest"])
    bench.add_argument("--trades", type=int, default=1_000_000)
    bench.add_argument("--trades-per-frame", type=int, default=50)
    bench.add_argument("--days", type=int, default=252, help="backtest: trading days of 1-minute bars per symbol")
    bench.set_defaults(func=cmd_bench)

    sub.add_parser("flink-smoke", help="run the PyFlink smoke job over the trades topic").set_defaults(func=cmd_flink_smoke)
    add_backtest_parser(sub)
    return parser


def add_backtest_parser(sub) -> None:
    from ticklake.backtest.request import add_arguments

    backtest = sub.add_parser("backtest", help="backtest a strategy over the lake's bars, sweeping parameters "
                                               "(Spark job jobs/backtest.py; docs/BACKTESTS.md)")
    add_arguments(backtest, Settings())
    backtest.set_defaults(func=cmd_backtest)


def main(argv: list[str] | None = None) -> int:
    from ticklake.services import ServiceError

    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return args.func(Settings(), args)
    except (UserError, ServiceError) as error:
        _progress(f"error: {error}")
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
