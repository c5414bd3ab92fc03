package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"etcdapi/server"
)

// carryEvents passes GET /eventos from a live member and, when that member's
// stream breaks (it stopped, lost its leader) or the member is isolated or
// paused, carries the stream on from another member with Last-Event-ID: the
// client's one connection sees every event once, and the terminal one line
// saying what happened. The member judges the request (prefix, token, a
// compacted desde): a refusal goes back to the client as it is, and ends a
// stream already under way, so that the client sees it when it reconnects.
func (c *cluster) carryEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	query := r.URL.Query()
	from := query.Get("desde")
	if from == "" {
		from = r.Header.Get("Last-Event-ID")
	}
	query.Del("desde") // Last-Event-ID says where, on every connection
	http.NewResponseController(w).SetWriteDeadline(time.Time{})
	out := server.NewDeadlineWriter(w, 30*time.Second) // a client that stops reading is cut off
	var (
		pos        position
		streaming  bool
		previous   string // the member whose stream broke
		failures   int    // connections in a row that passed nothing
		retryAfter = "1"  // a member's own, when one answered 503 with it (a limit reached)
	)
	for ctx.Err() == nil {
		if failures > 0 {
			time.Sleep(200 * time.Millisecond) // a member without a leader ends its stream at once
		}
		c.awaitReady(ctx)
		live := c.liveMembers()
		if len(live) == 0 || (!streaming && failures >= 2*len(c.members)) {
			if !streaming {
				w.Header().Set("Retry-After", retryAfter)
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": "Nenhum membro do cluster respondeu ao /eventos"})
				return
			}
			failures++
			continue
		}
		m := live[0]
		if !streaming && pos.done == "" {
			pos.done = from
			if from == "" || from == "0" { // "from now": now as a revision, so a carry-over misses nothing
				pos.done = c.revision(ctx, m)
			}
		}
		mctx, cancel := context.WithCancel(ctx)
		go func() { // the member is stopped, isolated or paused: carry on elsewhere
			for c.running(m) {
				select {
				case <-mctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			cancel()
		}()
		resp, err := c.openEvents(mctx, m, query, r.Header, pos.done)
		switch {
		case err != nil:
			cancel()
			failures++
			continue
		case resp.StatusCode >= 500: // a member full of streams, or without etcd
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				retryAfter = ra
			}
			resp.Body.Close()
			cancel()
			failures++
			continue
		case resp.StatusCode != http.StatusOK:
			if !streaming {
				for k, v := range resp.Header {
					w.Header()[k] = v
				}
				w.WriteHeader(resp.StatusCode)
				io.Copy(w, resp.Body)
			}
			resp.Body.Close()
			cancel()
			return
		}
		if !streaming {
			for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
				w.Header().Set(k, resp.Header.Get(k))
			}
			w.WriteHeader(http.StatusOK)
			streaming = true
		} else if previous != "" {
			c.logf("/eventos: o stream de %s caiu; continua em %s a partir do evento %s", previous, m.name, pos.done)
		}
		passed := pos.pass(out, resp.Body)
		resp.Body.Close()
		cancel()
		previous = m.name
		if passed {
			failures = 0
		} else {
			failures++
		}
	}
}

// openEvents asks member m for its /eventos stream after revision done.
func (c *cluster) openEvents(ctx context.Context, m *member, query url.Values, h http.Header, done string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", m.api+"/eventos?"+query.Encode(), nil)
	for _, k := range []string{"Authorization", "Accept"} {
		if v := h.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	if done != "" {
		req.Header.Set("Last-Event-ID", done)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// revision is the cluster's revision as member m sees it now ("" if unknown).
func (c *cluster) revision(ctx context.Context, m *member) string {
	info, err := c.clusterInfo(ctx, m)
	if err != nil || info.Revision == 0 {
		return ""
	}
	return strconv.FormatInt(info.Revision, 10)
}

// running tells whether m is running, neither stopped, isolated nor paused
// (a member that lost its leader ends its streams by itself).
func (c *cluster) running(m *member) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == "ativo"
}

// position is where a carried stream stands. An event's id is its revision,
// and one revision can hold several events (a transaction): done is the last
// revision passed whole, cur the one being passed and seen how many of its
// events were. A stream resumed after done sends cur's events again: the
// first seen of them are skipped.
type position struct {
	done, cur string
	seen      int
}

// pass copies an event stream to w, an event at a time, and reports whether
// it passed any. An event cut in the middle is not passed: the next member
// sends it again.
func (pos *position) pass(w *server.DeadlineWriter, body io.Reader) (passed bool) {
	lines := bufio.NewReader(body)
	var event bytes.Buffer
	id, skip := "", pos.seen
	for {
		line, err := lines.ReadBytes('\n')
		if err != nil {
			return passed
		}
		event.Write(line)
		if v, ok := strings.CutPrefix(string(line), "id: "); ok {
			id = strings.TrimSpace(v)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			continue
		}
		if id != "" { // an event, not a comment (the keep-alive)
			if id == pos.cur && skip > 0 {
				skip-- // passed before the carry-over
				event.Reset()
				id = ""
				continue
			}
			if id == pos.cur {
				pos.seen++
			} else {
				if pos.cur != "" {
					pos.done = pos.cur
				} else if n, err := strconv.ParseInt(id, 10, 64); pos.done == "" && err == nil {
					pos.done = strconv.FormatInt(n-1, 10) // "from now" began before this one
				}
				pos.cur, pos.seen, skip = id, 1, 0
			}
			passed = true
		}
		if _, err := w.Write(event.Bytes()); err != nil || w.FlushError() != nil {
			return passed
		}
		event.Reset()
		id = ""
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
