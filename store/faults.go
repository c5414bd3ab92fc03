package store

import "go.etcd.io/etcd/client/pkg/v3/types"

// CutPeers drops every raft message between this member and the peers with
// these ids, both ways (etcd's own partition for its integration tests:
// EtcdServer.CutPeer pauses the peer's sender and its stream readers).
// MendPeers lets them flow again. For etcdapi demo's isolar and reconectar.
func (s *Store) CutPeers(ids []uint64) error { return s.eachPeer(ids, true) }

// MendPeers undoes CutPeers.
func (s *Store) MendPeers(ids []uint64) error { return s.eachPeer(ids, false) }

func (s *Store) eachPeer(ids []uint64, cut bool) error {
	if s.member == nil {
		return ErrNotEmbedded
	}
	for _, id := range ids {
		if cut {
			s.member.etcd.Server.CutPeer(types.ID(id))
		} else {
			s.member.etcd.Server.MendPeer(types.ID(id))
		}
	}
	return nil
}
