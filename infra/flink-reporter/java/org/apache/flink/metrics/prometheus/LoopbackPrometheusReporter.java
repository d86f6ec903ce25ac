package org.apache.flink.metrics.prometheus;

import org.apache.flink.util.PortRange;

import io.prometheus.client.exporter.HTTPServer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Iterator;

/**
 * Flink's Prometheus reporter on one host address instead of all of them.
 *
 * <p>Flink 2.0's {@link PrometheusReporter} binds {@code new InetSocketAddress(port)}, the
 * wildcard address, and has no host option. This one serves the same metrics (it is the same
 * {@link AbstractPrometheusReporter}) on {@code host:port}. It lives in Flink's package for the
 * reporter's registry, which is package-private.
 */
public class LoopbackPrometheusReporter extends AbstractPrometheusReporter {

    private HTTPServer httpServer;

    LoopbackPrometheusReporter(String host, PortRange ports) {
        Iterator<Integer> candidates = ports.getPortsIterator();
        while (candidates.hasNext() && httpServer == null) {
            int port = candidates.next();
            try {
                httpServer = new HTTPServer(new InetSocketAddress(host, port), registry);
                log.info("Started PrometheusReporter HTTP server on {}:{}.", host, port);
            } catch (IOException e) {
                log.debug("Could not start PrometheusReporter HTTP server on {}:{}.", host, port, e);
            }
        }
        if (httpServer == null) {
            throw new RuntimeException("Could not start PrometheusReporter HTTP server on " + host + ":" + ports);
        }
    }

    @Override
    public void close() {
        if (httpServer != null) {
            httpServer.stop();
        }
        super.close();
    }
}
