// Prometheus metrics, one registry per app instance (several apps may share a test process).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Audit entries that could not be written (each is also logged as an error). */
  readonly auditWriteFailures: Counter;

  constructor({ defaults }: { defaults: boolean }) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'mailroom_' });
    this.httpRequests = new Counter({
      name: 'mailroom_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: 'mailroom_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.auditWriteFailures = new Counter({
      name: 'mailroom_audit_write_failures_total',
      help: 'Audit entries that could not be written',
      registers: [this.registry],
    });
  }

  /** A gauge whose value is read when /metrics is scraped. */
  gauge(name: string, help: string, labelNames: string[], collect: (gauge: Gauge) => Promise<void> | void) {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        await collect(this);
      },
    });
  }
}
