package org.apache.flink.metrics.prometheus;

import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;

import java.util.Properties;

/**
 * {@code metrics.reporter.<name>.factory.class} of {@link LoopbackPrometheusReporter}; its
 * options are {@code host} (default 127.0.0.1) and {@code port} (a port or a range, as for
 * Flink's own reporter).
 */
public class LoopbackPrometheusReporterFactory implements MetricReporterFactory {

    @Override
    public LoopbackPrometheusReporter createMetricReporter(Properties properties) {
        return new LoopbackPrometheusReporter(
                option(properties, "host", "127.0.0.1"), new PortRange(option(properties, "port", "9249")));
    }

    private static String option(Properties properties, String key, String fallback) {
        Object value = properties.get(key); // Flink may hand over numbers as numbers
        return value == null ? fallback : value.toString();
    }
}
