package server

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Per-route metrics, by route template (not raw path), method and status. They live
// in Prometheus' default registry, beside the embedded member's own etcd metrics.
var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdapi_http_requests_total",
		Help: "HTTP requests answered, by route template, method and status.",
	}, []string{"route", "method", "status"})
	latency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "etcdapi_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route template, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "status"})
)

func observe(c *gin.Context, took time.Duration) {
	route := c.FullPath()
	if route == "" {
		route = "unmatched" // unknown paths must not grow the label set
	}
	status := strconv.Itoa(c.Writer.Status())
	requests.WithLabelValues(route, c.Request.Method, status).Inc()
	latency.WithLabelValues(route, c.Request.Method, status).Observe(took.Seconds())
}

var metricsHandler = gin.WrapH(promhttp.Handler())
