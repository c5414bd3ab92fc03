package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

type lockRequest struct {
	Holder   string   `json:"holder" binding:"max=200"`
	TTL      *int64   `json:"ttl" binding:"omitempty,min=5,max=3600"`
	Aguardar *float64 `json:"aguardar" binding:"omitempty,min=0,max=60"`
}

var lockProblems = map[string]string{
	"holder":   "deve ser um texto de até 200 caracteres",
	"ttl":      ttlProblem,
	"aguardar": waitProblem,
	"token":    "obrigatório: o token (inteiro positivo) recebido ao adquirir o lock",
}

func (s *server) acquireLock(c *gin.Context) {
	var r lockRequest
	if err := readInto(c, &r, lockProblems, true); err != nil {
		s.fail(c, err)
		return
	}
	if r.Holder == "" {
		r.Holder = "unknown" // as in the original
	}
	release, ok := s.wait(c, seconds(r.Aguardar))
	if !ok {
		return
	}
	defer release()
	ttl := ttlOr(r.TTL, s.cfg.LockTTL)
	token, err := s.store.AcquireLock(c.Request.Context(), c.Param("recurso"), r.Holder, ttl, seconds(r.Aguardar))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Lock adquirido", "recurso": c.Param("recurso"), "holder": r.Holder, "token": token, "ttl": ttl, "expira_em": expiresAt(ttl)})
}

// releaseLock frees a lock: with a token (query or body) only the holder's own,
// without one by force, as the original did.
func (s *server) releaseLock(c *gin.Context) {
	var token int64
	if c.Query("token") != "" {
		t, err := queryToken(c, lockProblems["token"])
		if err != nil {
			s.fail(c, err)
			return
		}
		token = t
	} else {
		body, err := readOptionalObject(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		if _, ok := body["token"]; ok {
			var r tokenRequest
			if err := bind(body, &r, lockProblems); err != nil {
				s.fail(c, err)
				return
			}
			token = r.Token
		}
	}
	recurso := c.Param("recurso")
	var err error
	if token == 0 {
		err = s.store.ForceRelease(c.Request.Context(), recurso)
	} else {
		err = s.store.Release(c.Request.Context(), "lock", recurso, token)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Lock liberado", "recurso": recurso, "forcado": token == 0})
}

func (s *server) getLock(c *gin.Context) {
	l, err := s.store.GetLock(c.Request.Context(), c.Param("recurso"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"recurso": l.Resource, "holder": l.Holder, "token": l.Token, "ttl_restante": l.TTLLeft, "fila": l.Queue})
}

func (s *server) listLocks(c *gin.Context) {
	held, err := s.store.Locks(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, held)
}
