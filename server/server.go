// Package server is etcdapi's HTTP API: Gin routes over the store.
package server

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

// Config holds the HTTP settings, read from the environment with envconfig.
type Config struct {
	Addr         string        `envconfig:"HTTP_ADDR" default:"127.0.0.1:5000" desc:"API listen address (0.0.0.0:5000 exposes it on the network)"`
	Token        string        `envconfig:"API_TOKEN" desc:"when set, API routes need Authorization: Bearer <token>"`
	TLSCertFile  string        `envconfig:"TLS_CERT_FILE" desc:"certificate file: serve HTTPS"`
	TLSKeyFile   string        `envconfig:"TLS_KEY_FILE" desc:"private key file: serve HTTPS"`
	ServiceTTL   time.Duration `envconfig:"SERVICE_TTL" default:"30s" desc:"default TTL of a service instance"`
	LockTTL      time.Duration `envconfig:"LOCK_TTL" default:"30s" desc:"default TTL of a lock"`
	MaxBodyBytes int64         `envconfig:"MAX_BODY_BYTES" default:"1048576" desc:"larger request bodies get 413"`
	CORSOrigins  Origins       `envconfig:"CORS_ORIGINS" desc:"comma-separated origins allowed by CORS (and to send writes)"`
	AllowedHosts []string      `envconfig:"ALLOWED_HOSTS" desc:"more Host names served on loopback without API_TOKEN (DNS rebinding guard)"`
	MaxConns     int           `envconfig:"MAX_CONNS" default:"0" desc:"most HTTP connections at once (0: half the open-file limit, at most 4096)"`
	MaxStreams   int           `envconfig:"MAX_STREAMS" default:"256" desc:"most open event streams at once; past it 503"`
	MaxWaiters   int           `envconfig:"MAX_WAITERS" default:"2048" desc:"most requests waiting at once (aguardar, Prefer: wait); past it 503"`
	DemoSecret   string        `envconfig:"DEMO_SECRET" desc:"set by etcdapi demo for its members: only their supervisor may cut them off from their peers"`
}

type server struct {
	store  *store.Store
	cfg    Config
	log    *slog.Logger
	access *LogHandler // writes the access log's lines

	streams, waiters chan struct{} // a place in each is an open stream, a waiting request
	// heavy is held shared by each snapshot being sent and alone by maintenance:
	// a defragmentation waits for every open read of the backend, and would
	// stall every read and write behind a snapshot that is read slowly.
	heavy sync.RWMutex
	cop   *http.CrossOriginProtection
}

// New builds the API's handler over st.
func New(st *store.Store, cfg Config, log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	s := &server{store: st, cfg: cfg, log: log,
		streams: make(chan struct{}, cfg.MaxStreams), waiters: make(chan struct{}, cfg.MaxWaiters),
		cop: CrossOrigin(cfg.CORSOrigins)}
	if s.access, _ = log.Handler().(*LogHandler); s.access == nil {
		s.access = &LogHandler{Handler: log.Handler()} // every line through slog
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.UseRawPath = true // an escaped "/" stays inside its path parameter, and gets a 400
	// CORS comes before anything that can answer, so a browser sees every
	// error; the API group then judges the token before the path and the body.
	r.Use(s.requestID, endLine, s.accessLog, s.recoverPanics)
	if LoopbackAddr(cfg.Addr) && cfg.Token == "" {
		r.Use(s.loopbackHost)
	}
	if len(cfg.CORSOrigins) > 0 {
		r.Use(cors.New(cors.Config{
			AllowOrigins:  cfg.CORSOrigins,
			AllowMethods:  []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
			AllowHeaders:  []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Prefer", "Etcdapi-Guarda", "Last-Event-ID", "X-Request-ID"},
			ExposeHeaders: []string{"ETag", "Location", "Link", "X-Request-ID", "Preference-Applied", "Retry-After"},
			MaxAge:        time.Hour,
		}))
	}
	r.Use(s.sameOrigin)
	r.NoRoute(s.auth, func(c *gin.Context) { c.JSON(404, gin.H{"erro": "Rota não encontrada"}) })
	r.NoMethod(s.auth, func(c *gin.Context) { c.JSON(405, gin.H{"erro": "Método não permitido"}) })
	s.routes(r)
	return r
}
