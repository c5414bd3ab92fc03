package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

func (s *server) getConfig(c *gin.Context) {
	key := c.Param("chave")
	v, rev, err := s.store.GetConfig(c.Request.Context(), key)
	if err == nil {
		reread, answered := s.awaitChange(c, store.ConfigKey(key), rev)
		if answered {
			return
		}
		if reread {
			v, rev, err = s.store.GetConfig(c.Request.Context(), key)
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header(etagHeader, etag(rev))
	c.JSON(http.StatusOK, gin.H{key: v})
}

func (s *server) putConfig(c *gin.Context) {
	body, err := readObject(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, ok := body["valor"]
	if !ok {
		s.fail(c, &apiError{status: http.StatusBadRequest, msg: "Campo valor obrigatório", campos: map[string]string{"valor": "obrigatório (qualquer valor JSON, inclusive null)"}})
		return
	}
	match, g, err := conditions(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	key := c.Param("chave")
	rev, err := s.store.PutConfig(c.Request.Context(), key, v, match, g)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header(etagHeader, etag(rev))
	c.JSON(http.StatusOK, gin.H{"mensagem": "Configuração atualizada", "chave": key, "valor": v, "revisao": rev})
}

func (s *server) listConfig(c *gin.Context) {
	all, err := s.store.ListConfig(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, all)
}

func (s *server) deleteConfig(c *gin.Context) {
	match, g, err := conditions(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	key := c.Param("chave")
	rev, err := s.store.DeleteConfig(c.Request.Context(), key, match, g)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Configuração removida", "chave": key, "revisao": rev})
}

func (s *server) configHistory(c *gin.Context) {
	h, err := s.store.ConfigHistory(c.Request.Context(), c.Param("chave"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}
