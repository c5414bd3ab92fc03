package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Maintenance is what Reclaim did.
type Maintenance struct {
	CompactedAt int64 `json:"revisao_compactada"`
	SizeBefore  int64 `json:"tamanho_db_antes"`
	SizeAfter   int64 `json:"tamanho_db_depois"`
}

// Reclaim gives space back after deletes: it compacts history up to now,
// defragments every member, and disarms the space alarm, so writes resume
// once the quota is no longer exceeded.
func (s *Store) Reclaim(ctx context.Context) (Maintenance, error) {
	var m Maintenance
	before, err := s.Cluster(ctx)
	if err != nil {
		return m, err
	}
	m.CompactedAt, m.SizeBefore = before.Revision, before.DBSize
	// Each call is bounded by REQUEST_TIMEOUT on its own.
	cctx, cancel := s.op(ctx)
	_, err = s.cli.Compact(cctx, m.CompactedAt, clientv3.WithCompactPhysical())
	cancel()
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return m, wrap(err)
	}
	if s.member != nil {
		// The in-process client has no Defragment: ask the backend directly,
		// for at most REQUEST_TIMEOUT (it cannot be cancelled: it goes on).
		// One at a time: a defragmentation that outlived its request still
		// holds the backend, and another queued behind it would too.
		if !s.defragging.CompareAndSwap(false, true) {
			return m, fmt.Errorf("%w: a defragmentation is still running", ErrUnavailable)
		}
		done := make(chan error, 1)
		go func() {
			defer s.defragging.Store(false)
			done <- s.member.etcd.Server.Backend().Defrag()
		}()
		dctx, cancel := s.op(ctx)
		defer cancel()
		select {
		case err := <-done:
			if err != nil {
				return m, fmt.Errorf("defragmenting: %w", err)
			}
		case <-dctx.Done():
			return m, fmt.Errorf("%w: defragmenting for over REQUEST_TIMEOUT", ErrUnavailable)
		}
	}
	for _, ep := range s.endpoints() {
		dctx, cancel := s.op(ctx)
		_, err := s.cli.Defragment(dctx, ep)
		cancel()
		if err != nil {
			return m, fmt.Errorf("defragmenting %s: %w", ep, wrap(err))
		}
	}
	actx, cancel := s.op(ctx)
	defer cancel()
	alarms, err := s.cli.AlarmList(actx)
	if err != nil {
		return m, wrap(err)
	}
	for _, a := range alarms.Alarms {
		if _, err := s.cli.AlarmDisarm(actx, (*clientv3.AlarmMember)(a)); err != nil {
			return m, wrap(err)
		}
	}
	after, err := s.Cluster(ctx)
	m.SizeAfter = after.DBSize
	return m, err
}

// endpoints are the external members to defragment (none in embedded mode).
func (s *Store) endpoints() []string {
	if s.member != nil {
		return nil
	}
	return s.cli.Endpoints()
}

// Snapshot streams a snapshot of etcd's backend, for etcdapi restore.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) error {
	rc, err := s.cli.Snapshot(ctx)
	if err != nil {
		return wrap(err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return wrap(err)
}

// Restore builds the data directory of cfg's member from a snapshot file, with
// etcd's own snapshot restore. The data directory must not exist yet.
func Restore(file string, cfg Config, lg *zap.Logger) error {
	if _, err := os.Stat(cfg.DataDir); err == nil {
		return fmt.Errorf("data directory %s exists: move it away first", cfg.DataDir)
	}
	peers := cfg.InitialAdvertisePeerURLs
	if len(peers) == 0 {
		peers = cfg.ListenPeerURLs
	}
	initial := cfg.InitialCluster
	if initial == "" {
		initial = cfg.Name + "=" + peers.String()
	}
	return snapshot.NewV3(lg).Restore(snapshot.RestoreConfig{
		SnapshotPath:        file,
		Name:                cfg.Name,
		OutputDataDir:       cfg.DataDir,
		PeerURLs:            strings.Split(peers.String(), ","),
		InitialCluster:      initial,
		InitialClusterToken: cfg.InitialClusterToken,
	})
}
