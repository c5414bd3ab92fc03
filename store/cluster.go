package store

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one member of the etcd cluster, with the status it reports itself.
type Member struct {
	Name       string   `json:"nome"`
	ID         string   `json:"id"`
	ClientURLs []string `json:"urls_cliente"`
	PeerURLs   []string `json:"urls_peer"`
	Leader     bool     `json:"lider"`
	State      string   `json:"estado"` // "ativo" or "inacessivel" (then the fields below are null)
	Revision   *int64   `json:"revisao"`
	RaftTerm   *uint64  `json:"termo_raft"`
	RaftIndex  *uint64  `json:"indice_raft"` // the member's applied index
	DBSize     *int64   `json:"tamanho_db"`
}

// Cluster describes the etcd cluster behind the API.
type Cluster struct {
	Mode     string   `json:"modo"` // "embutido" or "externo"
	Members  []Member `json:"membros"`
	Leader   string   `json:"lider"`
	RaftTerm uint64   `json:"termo_raft"`
	Revision int64    `json:"revisao"`
	DBSize   int64    `json:"tamanho_db"`
	Version  string   `json:"versao_etcd"`
}

// statusTimeout bounds the status asked of each member.
const statusTimeout = time.Second

// Cluster reads the members, and asks each member its own status, concurrently.
// It answers without quorum too: that is when a dashboard needs it most.
func (s *Store) Cluster(ctx context.Context) (Cluster, error) {
	c := Cluster{Mode: "externo"}
	if s.member != nil {
		c.Mode = "embutido"
	}
	lctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	members, err := s.cli.MemberList(lctx, clientv3.WithSerializable())
	if err != nil {
		return c, wrap(err)
	}
	statuses := make([]*clientv3.StatusResponse, len(members.Members))
	var wg sync.WaitGroup
	for i, m := range members.Members {
		wg.Go(func() { statuses[i] = s.memberStatus(ctx, m.ID, m.ClientURLs) })
	}
	wg.Wait()

	// The leader is the one named by the members that saw the latest term.
	var leader uint64
	for _, st := range statuses {
		if st == nil {
			continue
		}
		if st.RaftTerm > c.RaftTerm || (st.RaftTerm == c.RaftTerm && leader == 0) {
			c.RaftTerm, leader = st.RaftTerm, st.Leader
		}
		c.Revision, c.DBSize, c.Version = max(c.Revision, st.Header.Revision), max(c.DBSize, st.DbSize), st.Version
	}
	if c.Version == "" {
		return c, fmt.Errorf("%w: no member answers", ErrUnavailable)
	}
	for i, m := range members.Members {
		cm := Member{Name: m.Name, ID: fmt.Sprintf("%x", m.ID), ClientURLs: m.ClientURLs, PeerURLs: m.PeerURLs, Leader: m.ID == leader, State: "inacessivel"}
		if cm.Leader {
			c.Leader = m.Name
		}
		if st := statuses[i]; st != nil {
			cm.State = "ativo"
			cm.Revision, cm.RaftTerm, cm.RaftIndex, cm.DBSize = &st.Header.Revision, &st.RaftTerm, &st.RaftAppliedIndex, &st.DbSize
		}
		c.Members = append(c.Members, cm)
	}
	slices.SortFunc(c.Members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return c, nil
}

// memberStatus asks one member its status (nil when it does not answer in time).
func (s *Store) memberStatus(ctx context.Context, id uint64, urls []string) *clientv3.StatusResponse {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if s.member != nil && id == uint64(s.member.etcd.Server.MemberID()) {
		// The in-process client answers for this member, whatever the endpoint.
		st, err := s.cli.Status(ctx, "")
		if err != nil {
			return nil
		}
		return st
	}
	// Other members over the network: the in-process client cannot reach them.
	cli := s.cli
	if s.member != nil {
		if cli = s.watcher; cli == s.cli {
			return nil // no client URL here, so no network client
		}
	}
	for _, u := range urls {
		if refused(ctx, u) {
			continue
		}
		if st, err := cli.Status(ctx, u); err == nil {
			return st
		}
	}
	return nil
}

// refused tells at once that nothing listens on a client URL: gRPC would
// wait for a connection until the deadline instead.
func refused(ctx context.Context, clientURL string) bool {
	u, err := url.Parse(clientURL)
	if err != nil {
		return true
	}
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}
