package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"etcdapi/server"
)

// carryEvents passes GET /eventos from a live member and, when that member's
// stream breaks (it stopped) or the member can no longer serve (isolated,
// paused, without a leader), carries the stream on from another member with
// Last-Event-ID, the last event id passed on: the client's one connection
// sees every event once, and the terminal one line saying what happened.
// The member judges the request (prefix, token): its first answer, when not
// a stream, goes back as it is.
func (c *cluster) carryEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	query := r.URL.Query()
	last := query.Get("desde")
	if last == "" {
		last = r.Header.Get("Last-Event-ID")
	}
	query.Del("desde") // from the second member on, Last-Event-ID says where
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	out := server.NewDeadlineWriter(w, 30*time.Second) // a client that stops reading is cut off
	streaming, from := false, ""
	for ctx.Err() == nil {
		c.awaitReady(ctx)
		live := c.liveMembers()
		if len(live) == 0 {
			if !streaming {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": "Nenhum membro do cluster respondeu: todos os membros estão parados"})
				return
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		m := live[0]
		mctx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(mctx, "GET", m.api+"/eventos?"+query.Encode(), nil)
		for _, h := range []string{"Authorization", "Accept"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			cancel()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !streaming && resp.StatusCode != http.StatusOK {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			resp.Body.Close()
			cancel()
			return
		}
		if resp.StatusCode != http.StatusOK { // a member full of streams, or without etcd
			resp.Body.Close()
			cancel()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if !streaming {
			for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
				w.Header().Set(k, resp.Header.Get(k))
			}
			w.WriteHeader(http.StatusOK)
			streaming = true
		} else {
			c.logf("/eventos: o stream de %s caiu; continua em %s a partir do evento %s", from, m.name, last)
		}
		from = m.name
		go func() { // the member can no longer serve: carry on elsewhere
			for c.serving(m) {
				select {
				case <-mctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			cancel()
		}()
		last = c.pass(out, resp.Body, last)
		resp.Body.Close()
		cancel()
	}
}

// serving tells whether m is running and its last /readyz passed.
func (c *cluster) serving(m *member) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == "ativo" && !m.unready
}

// pass copies an event stream to w, an event at a time, and returns the id
// of the last event copied whole (last when none).
func (c *cluster) pass(w *server.DeadlineWriter, body io.Reader, last string) string {
	lines := bufio.NewReader(body)
	var event bytes.Buffer
	id := ""
	for {
		line, err := lines.ReadBytes('\n')
		if err != nil {
			return last // an event cut in the middle is sent again by the next member
		}
		event.Write(line)
		if v, ok := strings.CutPrefix(string(line), "id: "); ok {
			id = strings.TrimSpace(v)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			continue
		}
		if _, err := w.Write(event.Bytes()); err != nil || w.FlushError() != nil {
			return last
		}
		event.Reset()
		if id != "" {
			last, id = id, ""
		}
	}
}

// logWriter is the supervisor's log, or nowhere.
func (c *cluster) logWriter() io.Writer {
	if c.log == nil {
		return io.Discard
	}
	return c.log
}

// logf writes one line to the supervisor's log.
func (c *cluster) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "etcdapi demo: "+format+"\n", args...)
	}
}
