package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is a snapshot of a database connection pool (the fields of
// pgxpool.Stat).
type PoolStats struct {
	AcquiredConns        int32
	IdleConns            int32
	MaxConns             int32
	TotalConns           int32
	ConstructingConns    int32
	AcquireCount         int64
	AcquireDuration      time.Duration
	EmptyAcquireCount    int64
	EmptyAcquireWaitTime time.Duration
	CanceledAcquireCount int64
	NewConnsCount        int64
}

// PoolCollector exports PoolStats taken at scrape time as pgxpool_* metrics.
type PoolCollector struct {
	stats func() PoolStats

	acquired, idle, max, total, constructing *prometheus.Desc
	acquires, acquireSeconds                 *prometheus.Desc
	emptyAcquires, emptyAcquireWait          *prometheus.Desc
	canceled, newConns                       *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector returns a collector calling stats on every scrape.
func NewPoolCollector(stats func() PoolStats) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pgxpool_"+name, help, nil, nil)
	}
	return &PoolCollector{
		stats:            stats,
		acquired:         d("acquired_conns", "Connections currently acquired from the pool."),
		idle:             d("idle_conns", "Idle connections in the pool."),
		max:              d("max_conns", "Maximum size of the pool."),
		total:            d("total_conns", "Total connections in the pool (acquired, idle and constructing)."),
		constructing:     d("constructing_conns", "Connections being established."),
		acquires:         d("acquire_count_total", "Successful acquires from the pool."),
		acquireSeconds:   d("acquire_duration_seconds_total", "Total time spent in successful acquires."),
		emptyAcquires:    d("empty_acquire_count_total", "Successful acquires that had to wait for a connection because the pool was empty."),
		emptyAcquireWait: d("empty_acquire_wait_seconds_total", "Total time spent waiting in acquires from an empty pool."),
		canceled:         d("canceled_acquire_count_total", "Acquires cancelled by their context."),
		newConns:         d("new_conns_count_total", "Connections opened."),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.max, c.total, c.constructing, c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyAcquireWait, c.canceled, c.newConns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns))
	g(c.idle, float64(s.IdleConns))
	g(c.max, float64(s.MaxConns))
	g(c.total, float64(s.TotalConns))
	g(c.constructing, float64(s.ConstructingConns))
	n(c.acquires, float64(s.AcquireCount))
	n(c.acquireSeconds, s.AcquireDuration.Seconds())
	n(c.emptyAcquires, float64(s.EmptyAcquireCount))
	n(c.emptyAcquireWait, s.EmptyAcquireWaitTime.Seconds())
	n(c.canceled, float64(s.CanceledAcquireCount))
	n(c.newConns, float64(s.NewConnsCount))
}
