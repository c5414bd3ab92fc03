package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

const (
	// keepAlive is how often an idle stream gets a comment line, so proxies keep it open.
	keepAlive = 15 * time.Second
	// maxBehind is how many bytes of events a stream may hold for a client that
	// does not read them; past it the stream is closed (SPEC §7).
	maxBehind = 4 << 20
)

// events streams etcd's changes below one prefix as Server-Sent Events.
// desde (or Last-Event-ID) resumes right after that revision.
func (s *server) events(c *gin.Context) {
	prefix := c.Query("prefixo")
	if !watchable(prefix) {
		s.fail(c, &apiError{status: http.StatusBadRequest, msg: "prefixo deve ser " + strings.Join(store.Watched, ", ") + " ou um caminho abaixo de um deles"})
		return
	}
	from := c.Query("desde")
	if from == "" {
		from = c.GetHeader("Last-Event-ID")
	}
	var after int64
	if from != "" {
		var err error
		if after, err = strconv.ParseInt(from, 10, 64); err != nil || after < 0 {
			s.fail(c, badRequest("desde (ou Last-Event-ID) deve ser uma revisão: um inteiro não negativo"))
			return
		}
	}
	release, ok := s.openStream(c)
	if !ok {
		return
	}
	defer release()
	ctx := c.Request.Context()
	changes, err := s.store.Watch(ctx, prefix, after, maxBehind)
	if err != nil {
		s.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := NewDeadlineWriter(c.Writer, streamWrite)
	fmt.Fprint(w, ": etcdapi\n\n")
	w.FlushError()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case batch, ok := <-changes:
			if !ok {
				// The watch ended, or this client fell too far behind: it
				// reconnects with Last-Event-ID and misses nothing.
				return
			}
			for _, ch := range batch {
				data, _ := json.Marshal(ch)
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ch.Revision, ch.Type, data); err != nil {
					return
				}
			}
			if w.FlushError() != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || w.FlushError() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func watchable(prefix string) bool {
	if strings.Contains(prefix, "/../") || strings.Contains(prefix, "/./") {
		return false
	}
	for _, p := range store.Watched {
		if strings.HasPrefix(prefix, p) {
			return true
		}
	}
	return false
}
