// Package server is etcdapi's HTTP API: Gin routes over the store.
package server

import (
	"log/slog"
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
	CORSOrigins  []string      `envconfig:"CORS_ORIGINS" desc:"comma-separated origins allowed by CORS"`
}

type server struct {
	store  *store.Store
	cfg    Config
	log    *slog.Logger
	access *LogHandler // writes the access log's lines
}

// New builds the API's handler over st.
func New(st *store.Store, cfg Config, log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	s := &server{store: st, cfg: cfg, log: log}
	if s.access, _ = log.Handler().(*LogHandler); s.access == nil {
		s.access = &LogHandler{Handler: log.Handler()} // every line through slog
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.UseRawPath = true // an escaped "/" stays inside its path parameter, and gets a 400
	// CORS comes before anything that can answer, so a browser sees every
	// error; the API group then judges the token before the path and the body.
	r.Use(s.requestID, s.accessLog, s.recoverPanics)
	if len(cfg.CORSOrigins) > 0 {
		r.Use(cors.New(cors.Config{
			AllowOrigins:  cfg.CORSOrigins,
			AllowMethods:  []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
			AllowHeaders:  []string{"Authorization", "Content-Type", "If-Match", "Last-Event-ID", "X-Request-ID"},
			ExposeHeaders: []string{"ETag", "Location", "Link", "X-Request-ID"},
			MaxAge:        time.Hour,
		}))
	}
	r.NoRoute(s.auth, func(c *gin.Context) { c.JSON(404, gin.H{"erro": "Rota não encontrada"}) })
	r.NoMethod(s.auth, func(c *gin.Context) { c.JSON(405, gin.H{"erro": "Método não permitido"}) })
	s.routes(r)
	return r
}
