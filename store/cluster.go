package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one member of the etcd cluster.
type Member struct {
	Name       string   `json:"nome"`
	ID         string   `json:"id"`
	ClientURLs []string `json:"urls_cliente"`
	PeerURLs   []string `json:"urls_peer"`
	Leader     bool     `json:"lider"`
}

// Cluster describes the etcd cluster behind the API.
type Cluster struct {
	Mode     string   `json:"modo"` // "embutido" or "externo"
	Members  []Member `json:"membros"`
	Leader   string   `json:"lider"`
	Revision int64    `json:"revisao"`
	DBSize   int64    `json:"tamanho_db"`
	Version  string   `json:"versao_etcd"`
}

// Cluster reads the members and the status of the cluster.
func (s *Store) Cluster(ctx context.Context) (Cluster, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	c := Cluster{Mode: "externo"}
	if s.member != nil {
		c.Mode = "embutido"
	}
	members, err := s.cli.MemberList(ctx)
	if err != nil {
		return c, wrap(err)
	}
	// The in-process client answers for its own member whatever the endpoint;
	// an external client asks each endpoint until one answers.
	var status *clientv3.StatusResponse
	for _, ep := range append(s.cli.Endpoints(), "") {
		if status, err = s.cli.Status(ctx, ep); err == nil {
			break
		}
	}
	if err != nil {
		return c, wrap(err)
	}
	c.Revision, c.DBSize, c.Version = status.Header.Revision, status.DbSize, status.Version
	for _, m := range members.Members {
		id := fmt.Sprintf("%x", m.ID)
		if m.ID == status.Leader {
			c.Leader = m.Name
		}
		c.Members = append(c.Members, Member{Name: m.Name, ID: id, ClientURLs: m.ClientURLs, PeerURLs: m.PeerURLs, Leader: m.ID == status.Leader})
	}
	return c, nil
}
