// Package store keeps etcdapi's data in etcd: an embedded member, or an external cluster.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config holds the etcd settings, read from the environment with envconfig.
type Config struct {
	Endpoints []string `envconfig:"ETCD_ENDPOINTS" desc:"comma-separated client URLs of an external cluster; when set no member is embedded"`
	Username  string   `envconfig:"ETCD_USERNAME" desc:"external cluster user"`
	Password  string   `envconfig:"ETCD_PASSWORD" desc:"external cluster password"`
	CAFile    string   `envconfig:"ETCD_CA_FILE" desc:"CA bundle that signs the external cluster's certificates"`
	CertFile  string   `envconfig:"ETCD_CERT_FILE" desc:"client certificate for the external cluster"`
	KeyFile   string   `envconfig:"ETCD_KEY_FILE" desc:"client key for the external cluster"`

	Name                     string        `envconfig:"ETCD_NAME" default:"default" desc:"embedded member name"`
	DataDir                  string        `envconfig:"ETCD_DATA_DIR" default:"data" desc:"embedded member data directory"`
	Ephemeral                bool          `envconfig:"ETCD_EPHEMERAL" default:"false" desc:"use a fresh temporary data directory, removed on exit"`
	ListenClientURLs         URLs          `envconfig:"ETCD_LISTEN_CLIENT_URLS" default:"http://127.0.0.1:2379" desc:"where the member serves etcd clients (etcdctl); off for none"`
	AdvertiseClientURLs      URLs          `envconfig:"ETCD_ADVERTISE_CLIENT_URLS" desc:"client URLs told to the cluster (default: the listen URLs)"`
	ListenPeerURLs           URLs          `envconfig:"ETCD_LISTEN_PEER_URLS" default:"http://127.0.0.1:2380" desc:"where the member talks to its peers"`
	InitialAdvertisePeerURLs URLs          `envconfig:"ETCD_INITIAL_ADVERTISE_PEER_URLS" desc:"peer URLs told to the cluster (default: the listen URLs)"`
	InitialCluster           string        `envconfig:"ETCD_INITIAL_CLUSTER" desc:"name=peerURL,... of every member (default: this member alone)"`
	InitialClusterState      string        `envconfig:"ETCD_INITIAL_CLUSTER_STATE" default:"new" desc:"new or existing"`
	InitialClusterToken      string        `envconfig:"ETCD_INITIAL_CLUSTER_TOKEN" default:"etcdapi" desc:"token that tells clusters apart"`
	Join                     string        `envconfig:"ETCD_JOIN" desc:"client URL of a running member: add this member to its cluster and start it"`
	QuotaBytes               int64         `envconfig:"ETCD_QUOTA_BYTES" default:"2147483648" desc:"backend space quota in bytes"`
	AutoCompactionRetention  time.Duration `envconfig:"ETCD_AUTO_COMPACTION_RETENTION" default:"1h" desc:"periodic auto-compaction keeps this much history"`
	HeartbeatMs              uint          `envconfig:"ETCD_HEARTBEAT_INTERVAL" default:"100" desc:"time between the leader's heartbeats, in milliseconds"`
	ElectionMs               uint          `envconfig:"ETCD_ELECTION_TIMEOUT" default:"1000" desc:"time without heartbeats before a member calls an election, in milliseconds"`
	LogLevel                 string        `envconfig:"ETCD_LOG_LEVEL" default:"warn" desc:"etcd's own log level (debug, info, warn, error)"`

	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT" default:"5s" desc:"bound on every call to etcd; past it the API answers 503"`
	StartupTimeout time.Duration `envconfig:"STARTUP_TIMEOUT" default:"60s" desc:"bound on the embedded member becoming ready"`
}

// URLs is a comma-separated list of http(s) URLs in a setting; "off" is the empty list.
type URLs []url.URL

// Decode lets envconfig reject a bad URL naming the variable.
func (u *URLs) Decode(v string) error {
	*u = nil
	if v == "off" || v == "" {
		return nil
	}
	for _, s := range strings.Split(v, ",") {
		p, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", s)
		}
		*u = append(*u, *p)
	}
	return nil
}

func (u URLs) String() string {
	s := make([]string, len(u))
	for i := range u {
		s[i] = u[i].String()
	}
	return strings.Join(s, ",")
}

// Store is etcdapi's data, kept in etcd.
type Store struct {
	cli     *clientv3.Client
	watcher *clientv3.Client // the client for watches: cli, or a network one (see watchClient)
	timeout time.Duration
	member  *member // nil in external mode
	index   *userIndex
	// watching is closed once watcher is set: the index fills before that.
	watching chan struct{}
	// stop ends the index's fill and watch, and returns once they have
	// ended: the fill's serializable reads must not reach a stopped member.
	stop func()
	log  *slog.Logger
	// defragging is set while the embedded member defragments (see Reclaim).
	defragging atomic.Bool
}

// Open starts the embedded member, or connects to the external cluster, and
// returns once etcd answers.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	temp := "" // an ephemeral data directory made here, and only that, is removed
	if cfg.Ephemeral && len(cfg.Endpoints) == 0 {
		dir, err := os.MkdirTemp("", "etcdapi-")
		if err != nil {
			return nil, err
		}
		cfg.DataDir, temp = dir, dir
	}
	// etcd ends the process itself on a fatal error: the ephemeral data goes first.
	removeTemp := func() {
		if temp != "" {
			os.RemoveAll(temp)
		}
	}
	quiet := new(atomic.Bool)
	zl, err := newEtcdLogger(log.Handler(), cfg.LogLevel, quiet, removeTemp)
	if err != nil {
		removeTemp()
		return nil, fmt.Errorf("ETCD_LOG_LEVEL: %w", err)
	}
	s := &Store{timeout: cfg.RequestTimeout, index: newUserIndex(), watching: make(chan struct{}), log: log}
	if len(cfg.Endpoints) == 0 {
		s.member, err = startMember(ctx, cfg, zl, quiet)
		if err != nil {
			return nil, err
		}
		s.cli = s.member.client()
		// A restarted member's store is open: the index fills while it elects
		// itself. A new member's is empty until it has joined its cluster.
		early := !s.member.fresh
		if early {
			s.startIndex()
		}
		stopIndex := func() {
			if early {
				s.stop()
			}
		}
		if err := s.member.ready(ctx, cfg.StartupTimeout, stopIndex); err != nil {
			s.cli.Close()
			return nil, err
		}
		if s.watcher, err = s.member.watchClient(zl); err != nil {
			s.Close()
			return nil, err
		}
		close(s.watching)
		if !early {
			s.startIndex()
		}
		return s, nil
	}

	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: 5 * time.Second,
		Logger:      zl,
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		tlsInfo := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
		if cc.TLS, err = tlsInfo.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	if s.cli, err = clientv3.New(cc); err != nil {
		return nil, fmt.Errorf("etcd cluster %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	// The client connects lazily: prove now that the cluster answers.
	cctx, cancel := context.WithTimeout(ctx, min(4*time.Second, cfg.StartupTimeout))
	defer cancel()
	if _, err := s.cli.Get(cctx, "/", clientv3.WithCountOnly()); err != nil {
		s.cli.Close()
		return nil, fmt.Errorf("etcd cluster %s does not answer: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	s.watcher = s.cli
	close(s.watching)
	s.startIndex()
	return s, nil
}

// Close stops the embedded member, if any, after closing the client.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	if s.watcher != nil && s.watcher != s.cli {
		s.watcher.Close()
	}
	err := s.cli.Close()
	if s.member != nil {
		s.member.close()
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Err reports a fatal error of the embedded member; it never fires in external mode.
func (s *Store) Err() <-chan error {
	if s.member == nil {
		return nil
	}
	return s.member.etcd.Err()
}

// Embedded tells whether the member runs inside this process.
func (s *Store) Embedded() bool { return s.member != nil }

// DataDir is the embedded member's data directory ("" in external mode).
func (s *Store) DataDir() string {
	if s.member == nil {
		return ""
	}
	return s.member.dir
}

// ClientURLs are where etcd clients such as etcdctl reach the cluster.
func (s *Store) ClientURLs() []string {
	if s.member == nil {
		return s.cli.Endpoints()
	}
	if s.member.private {
		return nil // ETCD_LISTEN_CLIENT_URLS=off: the socket is this process's own
	}
	return strings.Split(URLs(s.member.etcd.Config().AdvertiseClientUrls).String(), ",")
}

// Client is the etcd client, for the metrics and tests that look at etcd directly.
func (s *Store) Client() *clientv3.Client { return s.cli }

// op bounds one call to etcd by REQUEST_TIMEOUT and refuses to wait on a member without a leader.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.member != nil {
		// The in-process client ignores WithRequireLeader: answer 503 now, not after the timeout.
		timeout := s.timeout
		if s.leaderless() {
			timeout = 0
		}
		return context.WithTimeout(ctx, timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return clientv3.WithRequireLeader(ctx), cancel
}

// leaderless tells that the embedded member knows it has no leader.
func (s *Store) leaderless() bool { return s.member != nil && s.member.etcd.Server.Leader() == 0 }

// isObject tells whether a stored value is a JSON object, as etcdapi writes users.
func isObject(v []byte) bool { return startsObject(v) && json.Valid(v) }

// decodeObject decodes a stored value into dst if it is a JSON object (one
// pass: Unmarshal checks the whole value is valid JSON, and of the values that
// are not objects only null would decode without an error).
func decodeObject(v []byte, dst any) bool { return startsObject(v) && json.Unmarshal(v, dst) == nil }

func startsObject(v []byte) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '{'
}

// skipped logs, once per listing, the keys left out of it because another
// etcd client wrote something there that etcdapi cannot read.
func (s *Store) skipped(keys []string) {
	if len(keys) > 0 {
		s.log.Warn("values not written by etcdapi left out of a listing", "count", len(keys), "keys", keys[:min(len(keys), 10)])
	}
}

// startIndex fills the search index and keeps it current, in the background.
func (s *Store) startIndex() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		s.keepIndex(ctx)
	}()
}

// Ready reports whether a linearizable read succeeds within a second.
func (s *Store) Ready(ctx context.Context) error {
	if s.leaderless() {
		return fmt.Errorf("%w: this member has no leader (quorum lost or election under way)", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := s.cli.Get(clientv3.WithRequireLeader(ctx), "/readyz", clientv3.WithCountOnly())
	return wrap(err)
}
