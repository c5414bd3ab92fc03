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

// keepAlive is how often an idle stream gets a comment line, so proxies keep it open.
const keepAlive = 15 * time.Second

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
	ctx := c.Request.Context()
	changes, err := s.store.Watch(ctx, prefix, after)
	if err != nil {
		s.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := c.Writer
	fmt.Fprint(w, ": etcdapi\n\n")
	w.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case batch, ok := <-changes:
			if !ok {
				return // the watch ended: the client reconnects with Last-Event-ID
			}
			for _, ch := range batch {
				data, _ := json.Marshal(ch)
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ch.Revision, ch.Type, data); err != nil {
					return
				}
			}
			w.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			w.Flush()
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
