package server

import (
	"strconv"
	"sync"
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

// routeMetrics are one label set's series, looked up once instead of hashing
// the labels twice per request.
type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

type routeLabels struct {
	route, method string
	status        int
}

var series sync.Map // routeLabels -> *routeMetrics

func observe(c *gin.Context, took time.Duration) {
	// Labels from a closed set: unknown paths and made-up methods must not grow it.
	l := routeLabels{c.FullPath(), methodLabel(c.Request.Method), c.Writer.Status()}
	if l.route == "" {
		l.route = "unmatched"
	}
	m, ok := series.Load(l)
	if !ok {
		status := strconv.Itoa(l.status)
		m, _ = series.LoadOrStore(l, &routeMetrics{
			requests: requests.WithLabelValues(l.route, l.method, status),
			latency:  latency.WithLabelValues(l.route, l.method, status),
		})
	}
	rm := m.(*routeMetrics)
	rm.requests.Inc()
	rm.latency.Observe(took.Seconds())
}

var metricsHandler = gin.WrapH(promhttp.Handler())

// methodLabel is the request's method when it is a standard one, else "other".
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "other"
}
