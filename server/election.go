package server

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

type candidacyRequest struct {
	Candidato string          `json:"candidato" binding:"required,max=200"`
	Valor     json.RawMessage `json:"valor"`
	TTL       *int64          `json:"ttl" binding:"omitempty,min=5,max=3600"`
	Aguardar  *float64        `json:"aguardar" binding:"omitempty,min=0,max=60"`
}

type proclaimRequest struct {
	Token int64           `json:"token" binding:"required,min=1"`
	Valor json.RawMessage `json:"valor" binding:"required"` // any JSON, null too: only absence is refused
}

var electionProblems = map[string]string{
	"candidato": "obrigatório: um texto de 1 a 200 caracteres",
	"valor":     "obrigatório: qualquer valor JSON",
	"ttl":       ttlProblem,
	"aguardar":  waitProblem,
	"token":     "obrigatório: o token (inteiro positivo) recebido ao ser eleito",
}

// campaign puts a candidate in line and answers once it leads, or 409 when
// aguardar runs out first (the candidacy is then withdrawn).
func (s *server) campaign(c *gin.Context) {
	var r candidacyRequest
	if err := readInto(c, &r, electionProblems, false); err != nil {
		s.fail(c, err)
		return
	}
	release, ok := s.wait(c, seconds(r.Aguardar))
	if !ok {
		return
	}
	defer release()
	ttl := ttlOr(r.TTL, s.cfg.LockTTL)
	token, err := s.store.Campaign(c.Request.Context(), c.Param("nome"), r.Candidato, r.Valor, ttl, seconds(r.Aguardar))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Eleito", "eleicao": c.Param("nome"), "candidato": r.Candidato, "valor": r.Valor, "token": token, "ttl": ttl, "expira_em": expiresAt(ttl)})
}

func (s *server) getLeader(c *gin.Context) {
	e, err := s.store.Leader(c.Request.Context(), c.Param("nome"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (s *server) listElections(c *gin.Context) {
	all, err := s.store.Elections(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, all)
}

// proclaim lets the leader announce a new valor; observers see it on /eventos.
func (s *server) proclaim(c *gin.Context) {
	var r proclaimRequest
	if err := readInto(c, &r, electionProblems, false); err != nil {
		s.fail(c, err)
		return
	}
	name, err := s.store.Proclaim(c.Request.Context(), c.Param("nome"), r.Token, r.Valor)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Valor proclamado", "eleicao": c.Param("nome"), "candidato": name, "valor": r.Valor, "token": r.Token})
}
