package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A 503 is passed to the next member only for reads: a write whose outcome is
// unknown comes back to the client, never sent twice.
func TestProxyRetriesA503OnlyWhenARepeatCannotMislead(t *testing.T) {
	var unavailableHits, okHits atomic.Int64
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unavailableHits.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"erro":"etcd indisponível"}`, http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		okHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	defer ok.Close()
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, members: []*member{
		{name: "n1", api: unavailable.URL, state: "ativo"},
		{name: "n2", api: ok.URL, state: "ativo"},
	}}

	for _, tc := range []struct {
		method, ifMatch string
		want            int
		okHits          int64
		outHits         int64
	}{
		{"POST", "", http.StatusServiceUnavailable, 0, 1},
		{"PATCH", "", http.StatusServiceUnavailable, 0, 1},
		{"PUT", "", http.StatusServiceUnavailable, 0, 1},
		{"PUT", `"7"`, http.StatusServiceUnavailable, 0, 1},
		{"DELETE", "", http.StatusServiceUnavailable, 0, 1},
		{"GET", "", http.StatusOK, 1, 1},
	} {
		unavailableHits.Store(0)
		okHits.Store(0)
		c.next = 0 // the unavailable member first
		// As passOn hands it on: with GetBody, as http.NewRequest sets for a strings.Reader.
		req, _ := http.NewRequest(tc.method, "http://supervisor/config/x", strings.NewReader(`{"valor":1}`))
		if tc.ifMatch != "" {
			req.Header.Set("If-Match", tc.ifMatch)
		}
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || okHits.Load() != tc.okHits || unavailableHits.Load() != tc.outHits {
			t.Errorf("%s: %d %s; the 503 member asked %d times, the next %d times", tc.method, resp.StatusCode, body, unavailableHits.Load(), okHits.Load())
		}
		if tc.want == http.StatusOK && string(body) != `{"valor":1}` {
			t.Errorf("%s: the retried request lost its body: %q", tc.method, body)
		}
	}
}

// The supervisor refuses what its members would: a page of another origin
// cannot stop a member (parar needs no body), a rebound Host is 421 on
// loopback without a token, and a body is read only once the token is right.
func TestSupervisorRefusesCrossSiteWritesForeignHostsAndBodiesWithoutTheToken(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer backend.Close()
	open := &cluster{cfg: Config{Addr: "127.0.0.1:5000", MaxBodyBytes: 1 << 20}, members: []*member{{name: "n1", api: backend.URL, state: "ativo"}}}
	withToken := &cluster{cfg: Config{Addr: "127.0.0.1:5000", Token: "segredo", MaxBodyBytes: 1 << 20}, members: open.members}
	for _, tc := range []struct {
		name   string
		c      *cluster
		method string
		path   string
		body   string
		header []string
		want   int
	}{
		{"parar from another site", open, "POST", "/demo/membros/n1/parar", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"a write from another origin", open, "PUT", "/config/x", `{"valor":1}`, []string{"Origin", "http://malicioso.example"}, 403},
		{"a rebound name", open, "GET", "/demo/membros", "", []string{"Host", "malicioso.example:5000"}, 421},
		{"a body without the token", withToken, "PUT", "/config/x", `{"valor":1}`, nil, 401},
		{"a body over MAX_BODY_BYTES", open, "PUT", "/config/x", strings.Repeat("x", 1<<20+1), nil, 413},
		{"curl", open, "PUT", "/config/x", `{"valor":1}`, nil, 200},
		{"a rebound name with a token set", withToken, "PUT", "/config/x", `{"valor":1}`, []string{"Host", "etcdapi.lab.example", "Authorization", "Bearer segredo"}, 200},
	} {
		hits.Store(0)
		req := httptest.NewRequest(tc.method, "http://127.0.0.1:5000"+tc.path, strings.NewReader(tc.body))
		for i := 0; i+1 < len(tc.header); i += 2 {
			if tc.header[i] == "Host" {
				req.Host = tc.header[i+1]
			} else {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
		}
		w := httptest.NewRecorder()
		tc.c.handler().ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
		if tc.want >= 400 && hits.Load() != 0 {
			t.Errorf("%s: refused, yet passed on to the member", tc.name)
		}
	}
}

// Every port of every member differs: they are picked while all are held.
func TestMembersNeverShareAPort(t *testing.T) {
	c := &cluster{cfg: Config{Members: 7}}
	if err := c.prepare(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, m := range c.members {
		for _, u := range []string{m.api, m.client, m.peer} {
			if other, ok := seen[u]; ok {
				t.Fatalf("%s given to %s and %s", u, other, m.name)
			}
			seen[u] = m.name
		}
	}
}

// The demo's routes answer as the API's do: 405 with Allow for a route asked
// with the wrong method, 404 naming the members for an unknown one, JSON always.
func TestDemoRoutesAnswer405And404AsTheAPIDoes(t *testing.T) {
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, members: []*member{{name: "n1", state: "ativo"}, {name: "n2", state: "ativo"}}}
	h := c.handler()
	for _, tc := range []struct {
		method, path string
		want         int
		allow, body  string
	}{
		{"GET", "/demo/membros/n1/parar", 405, "POST", "use POST"},
		{"DELETE", "/demo/membros/n1/isolar", 405, "POST", "use POST"},
		{"POST", "/demo/membros", 405, "GET", "use GET"},
		{"POST", "/demo/membros/n9/parar", 404, "", `"membros":["n1","n2"]`},
		{"GET", "/demo/membros/n1/voar", 404, "", "Rota não encontrada"},
		{"POST", "/demo/membros/n1/iniciar", 409, "", `"O membro já está em execução"`}, // a capital, as every message
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, "http://localhost"+tc.path, nil))
		if w.Code != tc.want || w.Header().Get("Allow") != tc.allow || !strings.Contains(w.Body.String(), tc.body) || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d Allow %q %q, want %d Allow %q with %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body, tc.want, tc.allow, tc.body)
		}
	}
}

// Once stop has begun (Ctrl-C), a member's start that was about to run its
// process does not: it would outlive the supervisor, its data directory too.
func TestNoMemberStartsOnceStopHasBegun(t *testing.T) {
	exe, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: "n1", state: "parado", out: new(tail)}
	c := &cluster{cfg: Config{StartupTimeout: time.Second}, exe: exe, root: t.TempDir(), members: []*member{m}}
	c.stop()
	os.MkdirAll(c.root, 0o700) // stop removed it: the start must not fail for that
	if err := c.start(context.Background(), m); !errors.Is(err, errClosing) || m.cmd != nil {
		t.Fatalf("start after stop: %v, process %v; want errClosing and no process", err, m.cmd)
	}
	w := httptest.NewRecorder()
	c.handler().ServeHTTP(w, httptest.NewRequest("POST", "http://localhost/demo/membros/n1/iniciar", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "O demo está encerrando") {
		t.Fatalf("iniciar once stop has begun: %d %s, want 503 saying the demo is closing", w.Code, w.Body)
	}
}

// When the member behind a stream breaks it, the next member is asked with
// Last-Event-ID, the last revision passed whole: an event cut in the middle
// is not passed on, the events of a revision passed in part are not passed
// twice (a transaction's writes share a revision), and none is missed.
func TestEventStreamCarriesOverWithLastEventID(t *testing.T) {
	events := []struct{ rev, name string }{{"1", "a"}, {"2", "b"}, {"2", "c"}, {"3", "d"}, {"4", "e"}}
	event := func(i int) string {
		return fmt.Sprintf("id: %s\nevent: put\ndata: {\"k\":%q}\n\n", events[i].rev, events[i].name)
	}
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/eventos" {
			http.NotFound(w, r) // /cluster: the revision "from now" stays unknown
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": etcdapi\n\n"+event(0)+event(1)+"id: 2\nevent: put\n") // then the member dies
	}))
	defer first.Close()
	asked := make(chan string, 1)
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/eventos" {
			http.NotFound(w, r)
			return
		}
		after := r.Header.Get("Last-Event-ID")
		asked <- after + " " + r.URL.RawQuery
		last, _ := strconv.Atoi(after)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": etcdapi\n\n")
		for i, e := range events {
			if rev, _ := strconv.Atoi(e.rev); rev > last {
				io.WriteString(w, event(i))
			}
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer second.Close()
	log := new(tail) // locked: written by the supervisor's handler
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, log: log, members: []*member{
		{name: "n1", api: first.URL, state: "ativo"},
		{name: "n2", api: second.URL, state: "ativo"},
	}}
	supervisor := httptest.NewServer(c.handler())
	defer supervisor.Close()
	resp, err := http.Get(supervisor.URL + "/eventos?prefixo=/config/app/&desde=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	lines := bufio.NewScanner(resp.Body)
	for len(got) < len(events) && lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	if want := `{"k":"a"} {"k":"b"} {"k":"c"} {"k":"d"} {"k":"e"}`; strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %s: each once, none missed", got, want)
	}
	if got := <-asked; got != "1 prefixo=%2Fconfig%2Fapp%2F" {
		t.Fatalf("the second member was asked %q, want Last-Event-ID 1 (revision 2 was passed in part) and the prefix without desde", got)
	}
	if !strings.Contains(log.String(), "o stream de n1 caiu; continua em n2 a partir do evento 1") {
		t.Fatalf("log: %q", log.String())
	}
}

// A member that refuses the connection got nothing: any request, a POST
// included, goes on to the next member.
func TestProxyPassesARefusedConnectionToTheNextMember(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	var hits atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer ok.Close()
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, members: []*member{
		{name: "n1", api: refusing, state: "ativo"},
		{name: "n2", api: ok.URL, state: "ativo"},
	}}
	req, _ := http.NewRequest("POST", "http://supervisor/usuarios", strings.NewReader(`{"nome":"a"}`)) // with GetBody, as from passOn
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || hits.Load() != 1 {
		t.Fatalf("POST after a refused connection: %d, the next member asked %d times; want 201 from it", resp.StatusCode, hits.Load())
	}
}

// After a fault the supervisor made, a write waits for a member that has seen
// the new leader, but not when too few members run for a quorum: no leader is
// coming, and the write gets its member's 503 at once.
func TestAWriteIsHeldOnlyWhileALeaderMayCome(t *testing.T) {
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"erro":"etcd indisponível"}`, http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	for _, tc := range []struct {
		others string // the state of the other two members
		held   bool
	}{{"parado", false}, {"ativo", true}} {
		c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, recheck: make(chan struct{}, 1), members: []*member{
			{name: "n1", api: unavailable.URL, state: "ativo"},
			{name: "n2", api: "http://127.0.0.1:1", state: tc.others},
			{name: "n3", api: "http://127.0.0.1:1", state: tc.others},
		}}
		c.suspect() // a fault just made: every member unready
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, "PUT", "http://supervisor/config/x", strings.NewReader(`{"valor":1}`))
		resp, err := c.RoundTrip(req)
		cancel()
		if held := errors.Is(err, context.DeadlineExceeded); tc.held != held || (!held && err != nil) {
			t.Fatalf("others %s: %v %v; want held until the deadline: %v", tc.others, resp, err, tc.held)
		}
		if err == nil {
			if resp.Body.Close(); resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("others %s: %d, want the member's 503", tc.others, resp.StatusCode)
			}
		}
	}
}

// A stream no member would open (each full of streams, 503 with Retry-After)
// is answered 503 with the members' Retry-After (SPEC §7).
func TestAStreamNoMemberOpensGetsRetryAfter(t *testing.T) {
	full := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, `{"erro":"Streams demais"}`, http.StatusServiceUnavailable)
	}))
	defer full.Close()
	c := &cluster{cfg: Config{MaxBodyBytes: 1 << 20}, log: new(tail), members: []*member{
		{name: "n1", api: full.URL, state: "ativo"},
		{name: "n2", api: full.URL, state: "ativo"},
	}}
	supervisor := httptest.NewServer(c.handler())
	defer supervisor.Close()
	resp, err := http.Get(supervisor.URL + "/eventos?prefixo=/config/app/&desde=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("%d Retry-After %q, want 503 with the members' Retry-After 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Health checks go to running members only: nothing is sent to a member
// stopped, isolated or paused (SPEC §6).
func TestHealthChecksSkipMembersNotRunning(t *testing.T) {
	var asked [2]atomic.Int64
	counting := func(i int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked[i].Add(1) }))
	}
	running, paused := counting(0), counting(1)
	defer running.Close()
	defer paused.Close()
	c := &cluster{recheck: make(chan struct{}, 1), members: []*member{
		{name: "n1", api: running.URL, state: "ativo"},
		{name: "n2", api: paused.URL, state: "pausado"},
		{name: "n3", api: paused.URL, state: "isolado"},
		{name: "n4", api: paused.URL, state: "parado"},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.watchHealth(ctx)
	for deadline := time.Now().Add(5 * time.Second); asked[0].Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the running member was not checked three times in 5 s")
		}
		c.suspect()
	}
	if n := asked[1].Load(); n != 0 {
		t.Fatalf("the members paused, isolated and stopped were asked %d times", n)
	}
}
