package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that several servers (as in tests) do not collide.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	promptTokens   *prometheus.CounterVec
	genTokens      *prometheus.CounterVec
	genSeconds     *prometheus.CounterVec
	genRate        *prometheus.HistogramVec
	requestSeconds *prometheus.HistogramVec
	batchSize      prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foretoken_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"endpoint", "status"}),
		promptTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foretoken_prompt_tokens_total", Help: "Prompt tokens processed (cached ones included).",
		}, []string{"model"}),
		genTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foretoken_generated_tokens_total", Help: "Tokens generated.",
		}, []string{"model"}),
		genSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foretoken_generation_seconds_total", Help: "Time spent in generations (prefill and decode).",
		}, []string{"model"}),
		genRate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "foretoken_generation_tokens_per_second", Help: "Generated tokens per second of each request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}, []string{"model"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "foretoken_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foretoken_decode_batch_size", Help: "Requests whose decode steps shared one batched forward pass.",
			Buckets: prometheus.LinearBuckets(1, 1, 16),
		}),
	}
	m.reg.MustRegister(m.batchSize)
	m.reg.MustRegister(m.requests, m.promptTokens, m.genTokens, m.genSeconds, m.genRate, m.requestSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foretoken_queue_depth", Help: "Requests waiting for a generation slot.",
	}, func() float64 { return float64(s.queueDepth()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foretoken_active_requests", Help: "Requests holding a generation slot.",
	}, func() float64 { return float64(s.activeSlots()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foretoken_loaded_models", Help: "Models in memory.",
	}, func() float64 { return float64(len(s.models.loadedIDs())) }))
	return m
}
