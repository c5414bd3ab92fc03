package store

import (
	"bytes"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// TestPublishRetriesAfterRestartAreQuiet: etcd's warning burst while a
// restarted member applies its log is dropped; other publish failures stay.
func TestPublishRetriesAfterRestartAreQuiet(t *testing.T) {
	var out bytes.Buffer
	zl, err := newEtcdLogger(slog.NewTextHandler(&out, nil), "warn", new(atomic.Bool), func() {})
	if err != nil {
		t.Fatal(err)
	}
	msg := "failed to publish local member to cluster through raft"
	zl.Warn(msg, zap.Error(errors.New("etcdserver: too many requests")))
	if out.Len() != 0 {
		t.Fatalf("logged: %s", out.String())
	}
	zl.Warn(msg, zap.Error(errors.New("etcdserver: request timed out")))
	if !bytes.Contains(out.Bytes(), []byte("request timed out")) {
		t.Fatalf("a real publish failure was dropped: %q", out.String())
	}
}
