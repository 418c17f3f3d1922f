package otelevento

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/subscription"
)

// WithKeys limits ObserveSubscriptions to the given subscription keys
// (default: every subscriber in the store).
func WithKeys(keys ...string) Option {
	return func(c *config) { c.lagKeys = append(c.lagKeys, keys...) }
}

// WithLagInterval makes ObserveSubscriptions read the store at most once
// per d, reporting the last values in between (default 0: at every
// collection). subscription.Status reads up to subscription.StatusCountCap
// events per subscriber, so a store with a large backlog and frequent
// scrapes may want a longer interval.
func WithLagInterval(d time.Duration) Option { return func(c *config) { c.lagInterval = d } }

// WithLagTimeout bounds each read of the store (default 10 s).
func WithLagTimeout(d time.Duration) Option { return func(c *config) { c.lagTimeout = d } }

// ObserveSubscriptions registers observable gauges that read the
// subscribers' state from the store (subscription.Status) at each
// collection, so they are right even when no worker runs:
//
//   - evento.subscription.pending ({event}): events the subscriber still
//     has to process, by evento.subscription.key and
//     evento.subscription.partition;
//   - evento.subscription.lag (s): the age of the oldest of those events,
//     0 when none is pending;
//   - evento.subscription.parked ({event}): parked events.
//
// The meter comes from opts (WithMeterProvider, else the global provider).
// Unregister the returned registration before closing exec. A failed read
// is reported to otel.Handle by the SDK and reports nothing for that
// collection.
func ObserveSubscriptions(exec evento.Executor, opts ...Option) (metric.Registration, error) {
	c := newConfig(opts)
	m := c.mp.Meter(ScopeName)
	pending, err := m.Int64ObservableGauge("evento.subscription.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events a subscriber still has to process, read from the store."))
	if err != nil {
		return nil, err
	}
	lag, err := m.Float64ObservableGauge("evento.subscription.lag", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event a subscriber still has to process, read from the store; 0 when it is up to date."))
	if err != nil {
		return nil, err
	}
	parked, err := m.Int64ObservableGauge("evento.subscription.parked", metric.WithUnit("{event}"),
		metric.WithDescription("Parked events of a subscriber."))
	if err != nil {
		return nil, err
	}
	l := &lagReader{exec: exec, cfg: c}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		sts, err := l.status(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		for i := range sts {
			st := &sts[i]
			attrs := metric.WithAttributeSet(attribute.NewSet(AttrSubscriptionKey.String(st.Key), AttrPartition.Int64(int64(st.Partition))))
			o.ObserveInt64(pending, int64(st.Pending), attrs)
			o.ObserveInt64(parked, int64(st.Parked), attrs)
			age := 0.0
			if st.Pending > 0 {
				if !st.OldestPending.IsZero() {
					age = max(now.Sub(st.OldestPending).Seconds(), 0)
				} else if st.SinceAck > 0 {
					// No recorded selection: the best bound is the time
					// since the last acknowledgement.
					age = st.SinceAck.Seconds()
				}
			}
			o.ObserveFloat64(lag, age, attrs)
		}
		return nil
	}, pending, lag, parked)
}

// lagReader reads and caches the subscribers' status.
type lagReader struct {
	exec evento.Executor
	cfg  config

	mu   sync.Mutex
	at   time.Time
	last []subscription.SubscriberStatus
}

func (l *lagReader) status(ctx context.Context) ([]subscription.SubscriberStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.lagInterval > 0 && l.last != nil && time.Since(l.at) < l.cfg.lagInterval {
		return l.last, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.lagTimeout)
	defer cancel()
	sts, err := subscription.Status(ctx, l.exec, l.cfg.lagKeys...)
	if err != nil {
		return nil, err
	}
	l.last, l.at = sts, time.Now()
	return sts, nil
}
