// Package otelprom serves evento's OpenTelemetry metrics to Prometheus: it
// builds an SDK meter provider whose reader is the OpenTelemetry Prometheus
// exporter on a registry of its own, and the /metrics handler of that
// registry.
//
//	mp, metrics, err := otelprom.New()
//	exec = otelevento.Wrap(exec, otelevento.WithMeterProvider(mp))
//	reg, err := otelevento.ObserveSubscriptions(exec, otelevento.WithMeterProvider(mp))
//	mux.Handle("/metrics", metrics)
//
// Metric names follow the exporter's translation: dots become underscores,
// the unit "s" adds _seconds and counters end in _total
// (evento.write.events becomes evento_write_events_total,
// evento.subscription.lag becomes evento_subscription_lag_seconds).
package otelprom

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// New returns a meter provider that exports to a new Prometheus registry,
// and the HTTP handler that serves the registry in the Prometheus text
// format. The registry also holds the Go runtime and process collectors.
// Shut the provider down when done (it stops nothing else).
func New() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, fmt.Errorf("otelprom: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, fmt.Errorf("otelprom: %w", err)
	}
	exp, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("otelprom: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), nil
}
