package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"etcdapi/internal/testenv"
)

// The access log's hand-written line says what slog's own handlers would.
func TestAccessLineIsWhatSlogWouldWrite(t *testing.T) {
	cases := []struct{ method, route, path, id string }{
		{"GET", "/usuarios/:id", "/usuarios/0b0e4b0a-4b0a-4b0a-8b0a-0b0e4b0a4b0a", "EMILUZVUVW-1z"},
		{"POST", "", "/nada com espaço=\"aspas\" \\ <b>&\n", "id do cliente"},
		{"DELETE", "/lock/:recurso", "/lock/ção", ""},
	}
	took := 1234567 * time.Nanosecond
	for _, asJSON := range []bool{false, true} {
		for _, c := range cases {
			var ours, theirs bytes.Buffer
			NewLogHandler(&ours, asJSON, slog.LevelInfo).access(c.method, c.route, c.path, 201, took, c.id)
			var h slog.Handler = slog.NewTextHandler(&theirs, nil)
			if asJSON {
				h = slog.NewJSONHandler(&theirs, nil)
			}
			slog.New(h).LogAttrs(t.Context(), slog.LevelInfo, "request", slog.String("method", c.method), slog.String("route", c.route),
				slog.String("path", c.path), slog.Int("status", 201), slog.Float64("duration_ms", float64(took.Microseconds())/1000), slog.String("request_id", c.id))
			if asJSON {
				var a, b map[string]any
				if err := json.Unmarshal(ours.Bytes(), &a); err != nil {
					t.Fatalf("%s: %v", ours.String(), err)
				}
				json.Unmarshal(theirs.Bytes(), &b)
				if _, err := time.Parse(time.RFC3339Nano, a["time"].(string)); err != nil {
					t.Fatalf("time: %v", err)
				}
				delete(a, "time")
				delete(b, "time")
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("ours %s\nslog's %s", ours.String(), theirs.String())
				}
				continue
			}
			// Text: the same after the time, but that slog leaves printable
			// non-ASCII unquoted, where ours quotes it.
			a, b := afterTime(t, ours.String()), afterTime(t, theirs.String())
			if a != b && strings.Replace(a, `"/lock/ção"`, "/lock/ção", 1) != b {
				t.Fatalf("ours   %s\nslog's %s", a, b)
			}
		}
	}
}

func afterTime(t *testing.T, line string) string {
	t.Helper()
	ts, rest, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	if !ok {
		t.Fatalf("no time in %q", line)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", ts); err != nil {
		t.Fatalf("time %q: %v", ts, err)
	}
	return rest
}

// Every request gets its line, through the hand-written path, at info and not above.
func TestEveryRequestGetsOneAccessLine(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		var out testenv.Buffer
		h := New(st, testConfig(), slog.New(NewLogHandler(&out, false, level)))
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
