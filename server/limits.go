package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// How long a connection may take over each part of an exchange (SPEC §7): a
// client that stops sending or reading loses its connection instead of keeping
// a file descriptor forever. Waiting requests and streams set their own.
const (
	headerTimeout = 10 * time.Second
	readTimeout   = 30 * time.Second // headers and body
	answerTimeout = time.Minute      // from the end of the headers to the end of the answer
	idleTimeout   = time.Minute
	streamWrite   = 10 * time.Second // a stream's client must take each event within this
	snapshotWrite = 30 * time.Second // and a snapshot's client each part of it
)

// HTTPServer is an http.Server over h with etcdapi's timeouts, for the API and
// the demo's supervisor alike.
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      answerTimeout,
		IdleTimeout:       idleTimeout,
	}
}

// Origins is CORS_ORIGINS: origins such as https://painel.exemplo.com, checked at start.
type Origins []string

// Decode lets envconfig refuse a bad origin, naming the variable (exit 2, not a panic in CORS).
func (o *Origins) Decode(v string) error {
	*o = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if err := http.NewCrossOriginProtection().AddTrustedOrigin(s); err != nil {
			return fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
		}
		*o = append(*o, s)
	}
	return nil
}

// CrossOrigin refuses writes sent by a page of another origin than the
// server's own or CORS_ORIGINS (net/http's CSRF guard: Sec-Fetch-Site, else
// Origin against Host). curl and programs send neither header.
func CrossOrigin(trusted Origins) *http.CrossOriginProtection {
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		cop.AddTrustedOrigin(o) // checked by Origins.Decode
	}
	return cop
}

// sameOrigin answers 403 to a write a browser sends from another origin:
// no web page can change data, stop a member or start maintenance behind a
// user's back, body or not.
func (s *server) sameOrigin(c *gin.Context) {
	if err := s.cop.Check(c.Request); err != nil {
		s.fail(c, &apiError{status: http.StatusForbidden, msg: "Escrita de outra origem recusada: use a página do próprio etcdapi ou inclua a origem em CORS_ORIGINS"})
		return
	}
	c.Next()
}

// loopbackHost answers 421 to a Host that is not a loopback name, when the API
// listens on loopback with no token: a page whose name was rebound to
// 127.0.0.1 (DNS rebinding) reaches the port, but not with its own name.
func (s *server) loopbackHost(c *gin.Context) {
	if !AllowedHost(c.Request.Host, s.cfg.AllowedHosts) {
		s.fail(c, &apiError{status: http.StatusMisdirectedRequest, msg: "Host não permitido: use localhost ou 127.0.0.1, ou inclua o nome em ALLOWED_HOSTS"})
		return
	}
	c.Next()
}

// AllowedHost tells whether a request's Host names this machine's loopback or one of allowed.
func AllowedHost(host string, allowed []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	for _, a := range allowed {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// LoopbackAddr tells whether a listen address is on loopback only.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// busy answers 503 with Retry-After: a limit of SPEC §7 was reached.
func (s *server) busy(c *gin.Context, what string) {
	c.Header("Retry-After", "1")
	s.fail(c, &apiError{status: http.StatusServiceUnavailable, msg: "Limite de " + what + " atingido: tente novamente em instantes"})
}

// wait takes a place among the waiting requests for a request that may wait
// up to d, and lifts its connection's deadlines to fit. ok is false (and the
// 503 sent) when every place is taken; release must be called otherwise.
func (s *server) wait(c *gin.Context, d time.Duration) (release func(), ok bool) {
	if d <= 0 {
		return func() {}, true
	}
	select {
	case s.waiters <- struct{}{}:
	default:
		s.busy(c, "requisições em espera (MAX_WAITERS)")
		return nil, false
	}
	rc := http.NewResponseController(c.Writer)
	rc.SetReadDeadline(time.Time{}) // the body is read; the connection's read side only tells when the client leaves
	rc.SetWriteDeadline(time.Now().Add(d + answerTimeout))
	return func() { <-s.waiters }, true
}

// openStream takes a place among the open streams; release must be called when ok.
func (s *server) openStream(c *gin.Context) (release func(), ok bool) {
	select {
	case s.streams <- struct{}{}:
	default:
		s.busy(c, "streams abertos (MAX_STREAMS)")
		return nil, false
	}
	http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	return func() { <-s.streams }, true
}

// DeadlineWriter gives a long answer (a stream, a snapshot, a proxied answer)
// a write deadline per write: a client that stops reading is cut off, one that
// reads slowly is not.
type DeadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func NewDeadlineWriter(w http.ResponseWriter, d time.Duration) *DeadlineWriter {
	return &DeadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: d}
}

func (dw *DeadlineWriter) Write(p []byte) (int, error) {
	dw.rc.SetWriteDeadline(time.Now().Add(dw.d))
	return dw.ResponseWriter.Write(p)
}

// FlushError sends what is buffered, within the deadline.
func (dw *DeadlineWriter) FlushError() error {
	dw.rc.SetWriteDeadline(time.Now().Add(dw.d))
	return dw.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (dw *DeadlineWriter) Unwrap() http.ResponseWriter { return dw.ResponseWriter }
