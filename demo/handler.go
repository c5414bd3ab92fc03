package demo

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"etcdapi/server"
)

// handler is the supervisor's whole surface: the dashboard, the /demo/membros
// routes, and every other route passed to a live member.
func (c *cluster) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ui/", server.UI())
	mux.HandleFunc("GET /demo/membros", c.auth(c.listMembers))
	mux.HandleFunc("POST /demo/membros/{nome}/parar", c.auth(c.stopMember))
	mux.HandleFunc("POST /demo/membros/{nome}/iniciar", c.auth(c.startMember))
	mux.HandleFunc("POST /demo/membros/{nome}/isolar", c.auth(c.isolateMember))
	mux.HandleFunc("POST /demo/membros/{nome}/reconectar", c.auth(c.reconnectMember))
	mux.HandleFunc("POST /demo/membros/{nome}/pausar", c.auth(c.pauseMember))
	mux.HandleFunc("POST /demo/membros/{nome}/retomar", c.auth(c.resumeMember))
	mux.HandleFunc("/demo/", c.auth(noRoute(mux)))
	mux.HandleFunc("GET /eventos", c.carryEvents)
	mux.Handle("/", c.passOn(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "member" // the transport picks the member
			pr.SetXForwarded()
		},
		Transport: c,
		// A member stopped in the middle of an answer: one line, not Go's log format.
		ErrorLog: log.New(c.logWriter(), "etcdapi demo: um membro parou no meio de uma resposta: ", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": "Nenhum membro do cluster respondeu: " + err.Error()})
			}
		},
	}))
	return c.guard(mux)
}

// guard refuses, before anything else, what the members would refuse (SPEC §7):
// a foreign Host on loopback without a token (DNS rebinding), and a write sent
// by a page of another origin (the demo's own parar needs no body).
func (c *cluster) guard(h http.Handler) http.Handler {
	cop := server.CrossOrigin(c.cfg.CORSOrigins)
	rebindable := c.cfg.Token == "" && server.LoopbackAddr(c.cfg.Addr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rebindable && !server.AllowedHost(r.Host, c.cfg.AllowedHosts) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"erro": "Host não permitido: use localhost ou 127.0.0.1, ou inclua o nome em ALLOWED_HOSTS"})
			return
		}
		if err := cop.Check(r); err != nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"erro": "Escrita de outra origem recusada: use a página do próprio etcdapi ou inclua a origem em CORS_ORIGINS"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// passOn reads a request's body whole, so that it can go to the next member,
// and hands the request to proxy. The token comes first: a client without it
// must not make the supervisor hold MAX_BODY_BYTES for it. Once the body is in,
// the connection's deadlines give way to one per write: the answer may be a
// stream or a lock's waiting request, and a client that stops reading it is
// still cut off.
func (c *cluster) passOn(proxy http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			if !c.authorized(w, r) {
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxBodyBytes))
			if err != nil {
				writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"erro": "Corpo da requisição grande demais"})
				return
			}
			// Read once, sent to as many members as RoundTrip tries, each afresh.
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.Body, _ = r.GetBody()
			r.ContentLength = int64(len(body))
		}
		http.NewResponseController(w).SetReadDeadline(time.Time{})
		proxy.ServeHTTP(server.NewDeadlineWriter(w, 30*time.Second), r)
	})
}

// RoundTrip sends a proxied request to a live member, and to the next one when a
// member refuses the connection (nothing was sent), or answers 503 (no quorum,
// no leader, timed out) to a read. A 503 to a write goes back to the client:
// its outcome is unknown (etcd may still commit it), and sending it again
// could undo a newer write by another client, or create a second user or lock
// holder. So a write sent just after a fault the supervisor made, while no
// member is known to be ready (the election under way), waits for one.
func (c *cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	if !repeatable(req) {
		c.awaitReady(req.Context())
	}
	live := c.liveMembers()
	if len(live) == 0 {
		return nil, errors.New("todos os membros estão parados")
	}
	var err error
	for i, m := range live {
		out := req.Clone(req.Context())
		// The member's own address as Host: the supervisor judged the client's
		// Host already (guard), and a member on loopback without a token
		// answers 421 to any other. A browser's Sec-Fetch-Site goes on.
		out.URL.Host, out.Host = strings.TrimPrefix(m.api, "http://"), ""
		if req.GetBody != nil {
			out.Body, _ = req.GetBody()
		}
		last := i == len(live)-1
		var resp *http.Response
		resp, err = http.DefaultTransport.RoundTrip(out)
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED) && !last:
			continue
		case err != nil:
			return nil, err
		case resp.StatusCode == http.StatusServiceUnavailable && !last && repeatable(req):
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
	return nil, err
}

// liveMembers are the members running and neither isolated nor paused,
// starting from a different one each time so requests spread over the
// cluster; those whose last /readyz failed come last (see watchHealth).
func (c *cluster) liveMembers() []*member {
	c.mu.Lock()
	first := c.next
	c.next = (c.next + 1) % len(c.members)
	c.mu.Unlock()
	var ready, unready []*member
	for i := range c.members {
		m := c.members[(first+i)%len(c.members)]
		m.mu.Lock()
		switch {
		case m.state != "ativo":
		case m.unready:
			unready = append(unready, m)
		default:
			ready = append(ready, m)
		}
		m.mu.Unlock()
	}
	return append(ready, unready...)
}

// readyWait is how long after a fault the supervisor made a request waits
// for a ready member: a new leader is elected within about a second. Past
// it (quorum lost for good), requests go on at once and get their 503.
const readyWait = 3 * time.Second

// awaitReady returns once a running member's last /readyz passed, or
// readyWait after the last fault the supervisor made, or at once when too few
// members run for a quorum (no leader is coming: the write gets its 503
// within the member's REQUEST_TIMEOUT, as any other).
func (c *cluster) awaitReady(ctx context.Context) {
	deadline := time.Unix(0, c.suspected.Load()).Add(readyWait)
	for {
		running := 0
		for _, m := range c.members {
			m.mu.Lock()
			ativo, ready := m.state == "ativo", m.state == "ativo" && !m.unready
			m.mu.Unlock()
			if ready {
				return
			}
			if ativo {
				running++
			}
		}
		if 2*running <= len(c.members) || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// suspect marks every member unready and asks for a health round at once:
// after a fault the supervisor made itself, requests wait for a member that
// has seen the new leader rather than go to one still waiting for the old.
func (c *cluster) suspect() {
	c.suspected.Store(time.Now().UnixNano())
	for _, m := range c.members {
		m.mu.Lock()
		m.unready = true
		m.mu.Unlock()
	}
	select {
	case c.recheck <- struct{}{}:
	default:
	}
}

// watchHealth asks every running member's /readyz twice a second, and when
// suspect asks, so requests go first to members that can serve: one that lost
// its leader or quorum is found out within a second, before a client's
// request waits on it.
func (c *cluster) watchHealth(ctx context.Context) {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.recheck:
		}
		var wg sync.WaitGroup
		for _, m := range c.members {
			m.mu.Lock()
			ativo := m.state == "ativo"
			m.mu.Unlock()
			if !ativo {
				continue // nothing is sent to a member stopped, isolated or paused (SPEC §6)
			}
			wg.Go(func() {
				asked := c.suspected.Load()
				req, _ := http.NewRequestWithContext(ctx, "GET", m.api+"/readyz", nil)
				if c.cfg.Token != "" {
					req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
				}
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				m.mu.Lock()
				if c.suspected.Load() == asked { // an answer from before a fault says nothing after it
					m.unready = !ok
				}
				m.mu.Unlock()
			})
		}
		wg.Wait()
	}
}

type memberView struct {
	Name    string `json:"nome"`
	PID     *int   `json:"pid"`
	API     string `json:"api"`
	Client  string `json:"cliente"`
	Peer    string `json:"peer"`
	State   string `json:"estado"`
	Leader  bool   `json:"lider"`
	DataDir string `json:"dados"`
}

func (c *cluster) listMembers(w http.ResponseWriter, r *http.Request) {
	leader := c.leader(r.Context())
	list := make([]memberView, 0, len(c.members))
	for _, m := range c.members {
		m.mu.Lock()
		v := memberView{Name: m.name, API: m.api, Client: m.client, Peer: m.peer, State: m.state, Leader: m.name == leader && m.state != "parado", DataDir: m.dir}
		if m.state != "parado" {
			pid := m.cmd.Process.Pid
			v.PID = &pid
		}
		m.mu.Unlock()
		list = append(list, v)
	}
	writeJSON(w, http.StatusOK, list)
}

// leader asks the cluster, through a live member, which member leads ("" when unknown).
func (c *cluster) leader(ctx context.Context) string {
	info, _ := c.clusterInfo(ctx, nil)
	return info.Leader
}

// clusterInfo is what a member's GET /cluster tells the supervisor.
type clusterInfo struct {
	Leader   string `json:"lider"`
	Revision int64  `json:"revisao"`
	Members  []struct {
		Name string `json:"nome"`
		ID   string `json:"id"`
	} `json:"membros"`
}

// clusterInfo asks member m's GET /cluster, or a live member's when m is nil.
func (c *cluster) clusterInfo(ctx context.Context, m *member) (clusterInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url, send := "http://member/cluster", c.RoundTrip
	if m != nil {
		url, send = m.api+"/cluster", http.DefaultTransport.RoundTrip
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := send(req)
	if err != nil {
		return clusterInfo{}, err
	}
	defer resp.Body.Close()
	var info clusterInfo
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET /cluster: %s", resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

func (c *cluster) stopMember(w http.ResponseWriter, r *http.Request) {
	m := c.member(w, r)
	if m == nil {
		return
	}
	if err := c.kill(m); err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"erro": sentence(err)})
		return
	}
	c.suspect()
	writeJSON(w, http.StatusOK, map[string]string{"mensagem": "Membro parado (SIGKILL)", "nome": m.name})
}

func (c *cluster) startMember(w http.ResponseWriter, r *http.Request) {
	m := c.member(w, r)
	if m == nil {
		return
	}
	began := time.Now()
	// Not bound by the request: a start under way goes on if the client leaves.
	switch err := c.start(context.WithoutCancel(r.Context()), m); {
	case errors.Is(err, errRunning):
		writeJSON(w, http.StatusConflict, map[string]string{"erro": sentence(err)})
	case errors.Is(err, errClosing):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": sentence(err)})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"erro": "O membro não voltou dentro de STARTUP_TIMEOUT"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"mensagem": "Membro iniciado", "nome": m.name, "pronto_em_ms": time.Since(began).Milliseconds()})
	}
}

// member finds the member named in the path, or answers 404.
func (c *cluster) member(w http.ResponseWriter, r *http.Request) *member {
	for _, m := range c.members {
		if m.name == r.PathValue("nome") {
			return m
		}
	}
	names := make([]string, len(c.members))
	for i, m := range c.members {
		names[i] = m.name
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"erro": "Membro não encontrado: os membros são " + strings.Join(names, ", "), "membros": names})
	return nil
}

// noRoute answers what no /demo/ route of mux took, as the members answer
// theirs: 405 with Allow for a route asked with another method, 404 for the
// rest. (The catch-all /demo/ would otherwise take them all, any method.)
func noRoute(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = method
			if _, pattern := mux.Handler(probe); pattern != "/demo/" {
				w.Header().Set("Allow", method)
				writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"erro": "Método não permitido: use " + method})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"erro": "Rota não encontrada"})
	}
}

// auth asks for API_TOKEN, as the members do.
func (c *cluster) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.authorized(w, r) {
			h(w, r)
		}
	}
}

// authorized tells whether r carries API_TOKEN (when one is set), and answers 401 when not.
func (c *cluster) authorized(w http.ResponseWriter, r *http.Request) bool {
	if c.cfg.Token == "" {
		return true
	}
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.cfg.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, map[string]string{"erro": "Token ausente ou inválido"})
		return false
	}
	return true
}

// sentence is an error's text as an answer's message: Go's error strings
// start in lower case, the API's messages with a capital.
func sentence(err error) string {
	msg := err.Error()
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// repeatable tells whether a request may go to the next member after a 503,
// whatever became of it: reads only (SPEC §6). A write that timed out may
// still be committed: even a plain PUT sent again could land after, and undo,
// another client's newer write.
func repeatable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}
