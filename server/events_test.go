package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

type sseEvent struct {
	ID, Event string
	Data      obj
}

// sseStream is a client reading Server-Sent Events from the API.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t testing.TB, client *http.Client, url string, header ...string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(s.Close)
	return s
}

func (s *sseStream) Close() { s.resp.Body.Close() }

// next reads the next event, skipping comments.
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.ID != "":
			return ev, nil
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.Data); err != nil {
				return ev, err
			}
		}
	}
}

func (s *sseStream) take(t testing.TB, n int) []sseEvent {
	t.Helper()
	evs := make([]sseEvent, 0, n)
	for range n {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEventsStreamPutsAndDeletesAndResumeMissesNothing(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	url := srv.URL + "/eventos?prefixo=/config/app/ev-"
	s := openStream(t, srv.Client(), url)
	call(t, api, "PUT", "/config/ev-a", `{"valor": 1}`)
	call(t, api, "PUT", "/config/ev-a", `{"valor": {"x": "y"}}`)
	call(t, api, "DELETE", "/config/ev-a", "")
	evs := s.take(t, 3)
	want := []string{"put /config/app/ev-a 1", "put /config/app/ev-a map[x:y]", "delete /config/app/ev-a <nil>"}
	for i, ev := range evs {
		if got := fmt.Sprint(ev.Event, " ", ev.Data["chave"], " ", ev.Data["valor"]); got != want[i] || ev.Data["tipo"] != ev.Event || fmt.Sprint(ev.Data["revisao"]) != ev.ID {
			t.Fatalf("event %d: %+v, want %s", i, ev, want[i])
		}
	}
	s.Close()
	// Written while no one listens; a client resuming from its last id gets exactly these.
	call(t, api, "PUT", "/config/ev-b", `{"valor": "b1"}`)
	call(t, api, "PUT", "/config/ev-b", `{"valor": "b2"}`)
	last := evs[2].ID
	for _, resumed := range []*sseStream{
		openStream(t, srv.Client(), url, "Last-Event-ID", last),
		openStream(t, srv.Client(), url+"&desde="+last),
	} {
		got := resumed.take(t, 2)
		if got[0].Data["valor"] != "b1" || got[1].Data["valor"] != "b2" {
			t.Fatalf("resumed: %+v", got)
		}
		call(t, api, "PUT", "/config/ev-c", `{"valor": "c"}`)
		if ev := resumed.take(t, 1)[0]; ev.Data["valor"] != "c" {
			t.Fatalf("after resume: %+v (an event seen twice?)", ev)
		}
	}
}

func TestEventsRejectBadPrefixAndCompactedRevision(t *testing.T) {
	for _, p := range []string{"", "/", "/indices/email/", "/etc/", "users/", "/config/app/../../x"} {
		expect(t, call(t, api, "GET", "/eventos?prefixo="+p, ""), 400)
	}
	expect(t, call(t, api, "GET", "/eventos?prefixo=/users/&desde=abc", ""), 400)
	st, api := ownMember(t)
	resp, _ := st.Client().Put(context.Background(), "/config/app/compactar", "1")
	st.Client().Put(context.Background(), "/config/app/compactar", "2")
	if _, err := st.Client().Compact(context.Background(), resp.Header.Revision+1); err != nil {
		t.Fatal(err)
	}
	expect(t, call(t, api, "GET", fmt.Sprintf("/eventos?prefixo=/config/app/&desde=%d", resp.Header.Revision-1), ""), 410)
}

// withEachWatchClient runs f on the shared member, whose watches go over its
// client port, and on a member with ETCD_LISTEN_CLIENT_URLS=off, whose watches
// go over a private unix socket (never etcd's in-process watch client, which
// deadlocks with many watchers).
func withEachWatchClient(t *testing.T, f func(t *testing.T, h http.Handler)) {
	t.Run("client-port", func(t *testing.T) { f(t, api) })
	t.Run("off", func(t *testing.T) {
		cfg := testenv.StoreConfig()
		cfg.ListenClientURLs.Decode("off")
		own := testenv.OpenStore(cfg)
		t.Cleanup(func() { own.Close() })
		f(t, New(own, testConfig(), slog.New(slog.DiscardHandler)))
	})
}

func TestEventsClientsThatLeaveCostNothing(t *testing.T) {
	withEachWatchClient(t, testStreamsThatLeaveCostNothing)
}

func testStreamsThatLeaveCostNothing(t *testing.T, h http.Handler) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	settle := func() int {
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for range 1000 {
		s := openStream(t, client, srv.URL+"/eventos?prefixo=/locks/")
		s.Close()
	}
	var after int
	for range 20 { // goroutines of closed connections take a moment to end
		if after = settle(); after <= before+5 {
			break
		}
	}
	if after > before+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before 1000 streams, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestEventsManyStreamsGetTheSameEventsInOrder(t *testing.T) {
	withEachWatchClient(t, testManyStreams)
}

func testManyStreams(t *testing.T, h http.Handler) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	const streams, events = 200, 1000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	all := make([]*sseStream, streams)
	for i := range all {
		all[i] = openStream(t, client, srv.URL+"/eventos?prefixo=/config/app/muitos")
	}
	go func() {
		for i := range events { // no t.Fatal from this goroutine: ServeHTTP, not call
			w := httptest.NewRecorder()
			r := httptest.NewRequest("PUT", "/config/muitos", strings.NewReader(fmt.Sprintf(`{"valor": %d}`, i)))
			r.Header.Set("Content-Type", "application/json")
			if h.ServeHTTP(w, r); w.Code != 200 {
				t.Errorf("PUT %d: %d %s", i, w.Code, w.Body)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() {
			for i := range events {
				ev, err := s.next()
				if err != nil {
					t.Errorf("event %d: %v", i, err)
					return
				}
				if v, ok := ev.Data["valor"].(float64); !ok || v != float64(i) {
					t.Errorf("event %d has valor %v", i, ev.Data["valor"])
					return
				}
			}
		})
	}
	wg.Wait()
}

// Observing an election or a semaphore is watching its prefix (SPEC §4):
// /eventos takes /election/ and /semaphores/.
func TestEventsShowElectionsAndSemaphores(t *testing.T) {
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	elections := openStream(t, srv.Client(), srv.URL+"/eventos?prefixo=/election/observada/")
	semaphores := openStream(t, srv.Client(), srv.URL+"/eventos?prefixo=/semaphores/observado/")
	w := call(t, api, "POST", "/eleicao/observada/candidatar", `{"candidato":"ana","valor":"10.0.0.1"}`)
	expect(t, w, 200)
	expect(t, call(t, api, "PUT", "/eleicao/observada", `{"token":`+fmt.Sprint(num(decode[obj](t, w), "token"))+`,"valor":"10.0.0.9"}`), 200)
	expect(t, call(t, api, "POST", "/semaforo/observado", `{"holder":"h","limite":2}`), 200)
	for i, want := range []string{"10.0.0.1", "10.0.0.9"} {
		ev := elections.take(t, 1)[0]
		if ev.Event != "put" || !strings.HasPrefix(fmt.Sprint(ev.Data["chave"]), "/election/observada/") || !strings.Contains(fmt.Sprint(ev.Data["valor"]), want) {
			t.Fatalf("election event %d: %+v, want a put with %s", i, ev, want)
		}
	}
	if ev := semaphores.take(t, 1)[0]; ev.Event != "put" || !strings.HasPrefix(fmt.Sprint(ev.Data["chave"]), "/semaphores/observado/") {
		t.Fatalf("semaphore event: %+v", ev)
	}
}
