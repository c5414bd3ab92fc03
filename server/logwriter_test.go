package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

// The access log's hand-written line is, after the time, byte for byte what
// slog's own handlers write.
func TestAccessLineIsWhatSlogWouldWrite(t *testing.T) {
	cases := []struct {
		method, route, path, id string
		took                    time.Duration
	}{
		{"GET", "/usuarios/:id", "/usuarios/0b0e4b0a-4b0a-4b0a-8b0a-0b0e4b0a4b0a", "EMILUZVUVW-1z", 1234567 * time.Nanosecond},
		{"GET", "/eventos", "/eventos", "<b>&amp;", 20 * time.Minute}, // a long stream: 1.2e+06 ms
		{"GET", "/healthz", "/healthz", "x", 0},
		// Values to quote or escape go through slog itself.
		{"POST", "", "/nada com espaço=\"aspas\" \\ \n", "id do cliente", time.Millisecond},
		{"DELETE", "/lock/:recurso", "/lock/ção", "", time.Microsecond},
		{"GET", "/x", `/a\b`, "y", time.Microsecond},
	}
	for _, asJSON := range []bool{false, true} {
		for _, c := range cases {
			var ours, theirs bytes.Buffer
			NewLogHandler(&ours, asJSON, slog.LevelInfo).access(t.Context(), c.method, c.route, c.path, 201, c.took, c.id)
			var h slog.Handler = slog.NewTextHandler(&theirs, nil)
			if asJSON {
				h = slog.NewJSONHandler(&theirs, nil)
			}
			slog.New(h).LogAttrs(t.Context(), slog.LevelInfo, "request", slog.String("method", c.method), slog.String("route", c.route),
				slog.String("path", c.path), slog.Int("status", 201), slog.Float64("duration_ms", float64(c.took.Microseconds())/1000), slog.String("request_id", c.id))
			if a, b := afterTime(t, ours.String(), asJSON), afterTime(t, theirs.String(), asJSON); a != b {
				t.Fatalf("ours   %s\nslog's %s", ours.String(), theirs.String())
			}
		}
	}
}

// afterTime checks the line's time and returns what follows it.
func afterTime(t *testing.T, line string, asJSON bool) string {
	t.Helper()
	prefix, layout, end := "time=", "2006-01-02T15:04:05.000Z07:00", " "
	if asJSON {
		prefix, layout, end = `{"time":"`, time.RFC3339Nano, `"`
	}
	ts, rest, ok := strings.Cut(strings.TrimPrefix(line, prefix), end)
	if !ok {
		t.Fatalf("no time in %q", line)
	}
	if _, err := time.Parse(layout, ts); err != nil {
		t.Fatalf("time %q: %v", ts, err)
	}
	return rest
}

// Every request gets its line, at info and not above: from the hand-written
// path (the slog handler here writes nowhere), and through slog when the
// logger is any other handler.
func TestEveryRequestGetsOneAccessLine(t *testing.T) {
	for _, c := range []struct {
		level  slog.Level
		ownLog bool
	}{{slog.LevelInfo, true}, {slog.LevelWarn, true}, {slog.LevelInfo, false}} {
		level := c.level
		var out testenv.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level}))
		if c.ownLog {
			log = slog.New(&LogHandler{Handler: slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}), w: &out})
		}
		h := New(st, testConfig(), log)
		call(t, h, "GET", "/usuarios/nao-existe", "", "X-Request-ID", "linha-1")
		call(t, h, "GET", "/healthz", "", "X-Request-ID", "linha-2")
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if level > slog.LevelInfo {
			if out.String() != "" {
				t.Fatalf("at %s: %q", level, lines)
			}
			continue
		}
		if len(lines) != 2 || !strings.Contains(lines[0], "msg=request method=GET route=/usuarios/:id path=/usuarios/nao-existe status=404 duration_ms=") ||
			!strings.HasSuffix(lines[0], " request_id=linha-1") || !strings.HasSuffix(lines[1], " request_id=linha-2") {
			t.Fatalf("access log: %q", lines)
		}
	}
}

// TestLogWriterKeepsEveryLineInOrder: lines written at once by many goroutines,
// over many buffers, all arrive whole, each goroutine's in its order.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	var out testenv.Buffer
	l := NewLogWriter(&out)
	const writers, lines = 8, 5000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range lines {
				fmt.Fprintf(l, "g%d n%d %s\n", g, n, strings.Repeat("x", n%40))
			}
		})
	}
	wg.Wait()
	l.Close()
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, n int
		if _, err := fmt.Sscanf(line, "g%d n%d", &g, &n); err != nil || g < 0 || g >= writers || n != next[g] || len(line) != len(fmt.Sprintf("g%d n%d %s", g, n, strings.Repeat("x", n%40))) {
			t.Fatalf("line %q: want g%d's line %d (%v)", line, g, next[max(0, min(g, writers-1))], err)
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Fatalf("g%d: %d lines of %d", g, n, lines)
		}
	}
}

// blockedWriter blocks its first Write until released, as a stuck terminal would.
type blockedWriter struct {
	testenv.Buffer
	once              sync.Once
	entered, released chan struct{}
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.released
	})
	return b.Buffer.Write(p)
}

// TestLogWriterDoesNotHoldLinesBackDuringASlowWrite: while a full buffer is
// being written out, a request's line goes into the next one at once.
func TestLogWriterDoesNotHoldLinesBackDuringASlowWrite(t *testing.T) {
	w := &blockedWriter{entered: make(chan struct{}), released: make(chan struct{})}
	l := NewLogWriter(w)
	go l.Write([]byte(strings.Repeat("a", logBuffer) + "\n")) // fills a buffer: written out, and stuck
	<-w.entered
	// The periodic flush does not wait on it either (nor make lines wait).
	ticked := make(chan struct{})
	go func() { l.tick(); close(ticked) }()
	wrote := make(chan struct{})
	go func() { <-ticked; l.Write([]byte("next\n")); close(wrote) }()
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("a line, or the periodic flush, waited for the stuck write of the buffer before it")
	}
	close(w.released)
	l.Close()
	if got := w.String(); !strings.HasSuffix(got, "a\nnext\n") {
		t.Fatalf("log ends with %q", got[max(0, len(got)-20):])
	}
}

// BenchmarkLogWriter writes access-log-sized lines from every core at once.
func BenchmarkLogWriter(b *testing.B) {
	l := NewLogWriter(io.Discard)
	defer l.Close()
	line := []byte(strings.Repeat("x", 150) + "\n")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Write(line)
		}
	})
}
