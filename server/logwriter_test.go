package server

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
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

// Every request gets its line from the hand-written path (the slog handler
// here writes nowhere), at info and not above.
func TestEveryRequestGetsOneAccessLine(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		var out testenv.Buffer
		h := New(st, testConfig(), slog.New(&LogHandler{Handler: slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}), w: &out}))
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
