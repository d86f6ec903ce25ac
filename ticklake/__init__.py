"""ticklake: market-data pipeline (Finnhub -> Kafka -> Spark -> Cassandra + Iceberg)."""
