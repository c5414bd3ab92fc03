package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Locks, elections and semaphores are one kind of line each in the store; their
// renewals, and an election's and a semaphore's releases, are one handler.

const (
	ttlProblem  = "deve ser um número inteiro de segundos entre 5 e 3600"
	waitProblem = "deve ser um número de segundos entre 0 e 60"
)

type tokenRequest struct {
	Token int64 `json:"token" binding:"required,min=1"`
}

// renew renews the grant of kind ("lock", "eleicao", "semaforo") named by the
// route's parameter param that {"token"} holds.
func (s *server) renew(kind, param string, problems map[string]string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var r tokenRequest
		if err := readInto(c, &r, problems, false); err != nil {
			s.fail(c, err)
			return
		}
		left, err := s.store.Renew(c.Request.Context(), kind, c.Param(param), r.Token)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"ttl_restante": left})
	}
}

// release lets go of the leadership or the semaphore place ("eleicao",
// "semaforo": kind names the answer's field too) of ?token=N: the next in line
// takes it at once.
func (s *server) release(kind string, problems map[string]string, done string) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, err := queryToken(c, problems["token"])
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := s.store.Release(c.Request.Context(), kind, c.Param("nome"), token); err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"mensagem": done, kind: c.Param("nome")})
	}
}

// seconds turns an optional number of seconds into a duration (0 when absent).
func seconds(v *float64) time.Duration {
	if v == nil {
		return 0
	}
	return time.Duration(*v * float64(time.Second))
}

// ttlOr is the requested TTL in seconds, or def.
func ttlOr(v *int64, def time.Duration) int64 {
	if v != nil {
		return *v
	}
	return int64(def.Seconds())
}

// expiresAt is when a grant of ttl seconds made now expires.
func expiresAt(ttl int64) string {
	return time.Now().UTC().Add(time.Duration(ttl) * time.Second).Format(time.RFC3339Nano)
}

// queryToken reads the required ?token=N of a release.
func queryToken(c *gin.Context, problem string) (int64, error) {
	t, err := strconv.ParseInt(c.Query("token"), 10, 64)
	if err != nil || t < 1 {
		return 0, &apiError{status: http.StatusBadRequest, msg: "Dados inválidos", campos: map[string]string{"token": problem}}
	}
	return t, nil
}
