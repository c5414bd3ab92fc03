package server

import (
	"crypto/subtle"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// DemoSecretHeader carries DEMO_SECRET from a demo member's supervisor.
const DemoSecretHeader = "Etcdapi-Demo-Secret"

// fromSupervisor lets through only the member's own supervisor.
func (s *server) fromSupervisor(c *gin.Context) {
	if subtle.ConstantTimeCompare([]byte(c.GetHeader(DemoSecretHeader)), []byte(s.cfg.DemoSecret)) != 1 {
		s.fail(c, &apiError{status: http.StatusForbidden, msg: "Só o supervisor do demo pode isolar um membro"})
		return
	}
	c.Next()
}

// peers reads {"pares": ["<member id in hex>", ...]}.
func peers(c *gin.Context) ([]uint64, error) {
	var body struct {
		Pares []string `json:"pares"`
	}
	if err := c.ShouldBindJSON(&body); err != nil {
		return nil, badRequest("pares: lista de ids de membros em hexadecimal")
	}
	ids := make([]uint64, len(body.Pares))
	for i, p := range body.Pares {
		id, err := strconv.ParseUint(p, 16, 64)
		if err != nil {
			return nil, badRequest("pares: lista de ids de membros em hexadecimal")
		}
		ids[i] = id
	}
	return ids, nil
}

// peerLinks cuts the raft links to the peers named in the body (every
// message to and from them dropped), or mends them.
func (s *server) peerLinks(cut bool) gin.HandlerFunc {
	act, msg := s.store.MendPeers, "Pares religados"
	if cut {
		act, msg = s.store.CutPeers, "Pares cortados"
	}
	return func(c *gin.Context) {
		ids, err := peers(c)
		if err == nil {
			err = act(ids)
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"mensagem": msg, "pares": len(ids)})
	}
}
