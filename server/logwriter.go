package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// LogWriter buffers the log and writes it out every 100 ms, whenever 64 KB
// have gathered, and on Close: the access log's line per request then costs
// no write system call of its own, which was two thirds of its cost
// (docs/BENCHMARKS.md). A full buffer is written outside the lock that
// requests take to add their lines, so a slow terminal or disk holds them up
// only when the next buffer fills too; buffers are written in the order they
// filled. A crash loses at most the last 100 ms of lines. A failed write
// loses its buffer, and its error goes to the caller whose line filled it;
// later buffers are still written.
type LogWriter struct {
	w          io.Writer
	mu         sync.Mutex // guards buf and spare; out is only taken holding it
	buf, spare []byte
	out        sync.Mutex // held while a buffer is written to w
	stop, done chan struct{}
}

const logBuffer = 64 << 10

// NewLogWriter buffers writes to w until Close.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, buf: make([]byte, 0, logBuffer), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.tick()
			case <-l.stop:
				return
			}
		}
	}()
	return l
}

func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	if len(l.buf) < logBuffer {
		l.mu.Unlock()
		return len(p), nil
	}
	l.out.Lock()
	return len(p), l.writeOut()
}

// Flush writes out what is buffered, after any buffer being written.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	l.out.Lock()
	return l.writeOut()
}

// tick flushes, unless a buffer is being written: lines must not wait behind
// it for the tick's sake (the next tick flushes).
func (l *LogWriter) tick() {
	l.mu.Lock()
	if !l.out.TryLock() {
		l.mu.Unlock()
		return
	}
	l.writeOut()
}

// writeOut is called holding mu and out, and releases both: it swaps the
// buffer for the spare one, lets mu go, and writes the buffer out. Taking out
// before letting mu go keeps the buffers in the order they were taken.
func (l *LogWriter) writeOut() error {
	full := l.buf
	if len(full) == 0 {
		l.out.Unlock()
		l.mu.Unlock()
		return nil
	}
	l.buf, l.spare = l.spare, nil
	if l.buf == nil {
		l.buf = make([]byte, 0, logBuffer)
	}
	l.mu.Unlock()
	_, err := l.w.Write(full)
	l.out.Unlock()
	l.mu.Lock()
	l.spare = full[:0]
	l.mu.Unlock()
	return err
}

// Close stops the periodic flush and writes out the rest.
func (l *LogWriter) Close() error {
	close(l.stop)
	<-l.done
	return l.Flush()
}

// LogHandler is slog's Text or JSON handler on w, and writes the access log's
// line itself, by hand, byte for byte as that handler would: through slog the
// line cost 6 % of a GET's CPU (slog records the caller, checks every value
// for quoting, formats the time the generic way); by hand, a sixth of that
// (docs/BENCHMARKS.md). w must be safe for concurrent writes (LogWriter is):
// the access lines bypass the slog handler's lock.
type LogHandler struct {
	slog.Handler
	w    io.Writer
	json bool
	bufs sync.Pool // *[]byte
}

// NewLogHandler makes the process's log handler: JSON if json, else text.
func NewLogHandler(w io.Writer, json bool, level slog.Leveler) *LogHandler {
	opts := &slog.HandlerOptions{Level: level}
	h := &LogHandler{w: w, json: json}
	if json {
		h.Handler = slog.NewJSONHandler(w, opts)
	} else {
		h.Handler = slog.NewTextHandler(w, opts)
	}
	if f, ok := w.(flusher); ok {
		h.Handler = flushOnError{h.Handler, f}
	}
	return h
}

type flusher interface{ Flush() error }

// flushOnError writes the log out after each error line: the process may end
// right after one (etcd exits on a fatal error), and its reason must be seen.
type flushOnError struct {
	slog.Handler
	w flusher
}

func (h flushOnError) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelError {
		h.w.Flush()
	}
	return err
}

func (h flushOnError) WithAttrs(as []slog.Attr) slog.Handler {
	return flushOnError{h.Handler.WithAttrs(as), h.w}
}

func (h flushOnError) WithGroup(name string) slog.Handler {
	return flushOnError{h.Handler.WithGroup(name), h.w}
}

// access writes one access log line: what slog.Logger.LogAttrs(ctx,
// slog.LevelInfo, "request", method, route, path, status, duration_ms,
// request_id) writes, and through it when a value needs quoting or escaping
// or the handler is not one of NewLogHandler's.
func (h *LogHandler) access(ctx context.Context, method, route, path string, status int, took time.Duration, id string) {
	ms := float64(took.Microseconds()) / 1000
	if h.w == nil || !plain(method) || !plain(route) || !plain(path) || !plain(id) {
		slog.New(h.Handler).LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", method), slog.String("route", route),
			slog.String("path", path), slog.Int("status", status), slog.Float64("duration_ms", ms), slog.String("request_id", id))
		return
	}
	p, _ := h.bufs.Get().(*[]byte)
	if p == nil {
		p = new([]byte)
	}
	b := (*p)[:0]
	now := time.Now()
	if h.json {
		b = append(b, `{"time":"`...)
		b = now.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"INFO","msg":"request","method":"`...)
		b = append(b, method...)
		b = append(b, `","route":"`...)
		b = append(b, route...)
		b = append(b, `","path":"`...)
		b = append(b, path...)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, ms, 'f', -1, 64) // json.Marshal's form, for 1e-6 <= ms < 1e21 (or 0)
		b = append(b, `,"request_id":"`...)
		b = append(b, id...)
		b = append(b, "\"}\n"...)
	} else {
		b = append(b, "time="...)
		b = now.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, " level=INFO msg=request method="...)
		b = append(b, method...)
		b = append(b, " route="...)
		b = append(b, route...)
		b = append(b, " path="...)
		b = append(b, path...)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, " duration_ms="...)
		b = strconv.AppendFloat(b, ms, 'g', -1, 64)
		b = append(b, " request_id="...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	h.w.Write(b)
	*p = b
	h.bufs.Put(p)
}

// plain tells whether s is written as it is by both of slog's handlers:
// printable ASCII, no space, '=', '"' or '\\'.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\' {
			return false
		}
	}
	return s != ""
}
