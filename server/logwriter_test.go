package server

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the LogWriter's writes and the test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// TestLogWriterKeepsEveryLineInOrder: lines written at once by many goroutines,
// over many buffers, all arrive whole, each goroutine's in its order.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	var out lockedBuffer
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
	for _, line := range strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n") {
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
	lockedBuffer
	once              sync.Once
	entered, released chan struct{}
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.released
	})
	return b.lockedBuffer.Write(p)
}

// TestLogWriterDoesNotHoldLinesBackDuringASlowWrite: while a full buffer is
// being written out, a request's line goes into the next one at once.
func TestLogWriterDoesNotHoldLinesBackDuringASlowWrite(t *testing.T) {
	w := &blockedWriter{entered: make(chan struct{}), released: make(chan struct{})}
	l := NewLogWriter(w)
	go l.Write([]byte(strings.Repeat("a", logBuffer) + "\n")) // fills a buffer: written out, and stuck
	<-w.entered
	wrote := make(chan struct{})
	go func() { l.Write([]byte("next\n")); close(wrote) }()
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("a line waited for the stuck write of the buffer before it")
	}
	close(w.released)
	l.Close()
	if got := w.buf.String(); !strings.HasSuffix(got, "a\nnext\n") {
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
