package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"etcdapi/store"
)

// guardHeader is Etcdapi-Guarda, spelled as net/http stores it.
const guardHeader = "Etcdapi-Guarda"

const guardProblem = "use lock=<recurso>; token=<n> (ou eleicao=, semaforo=)"

// guardOf reads a write's Etcdapi-Guarda header: "lock=relatorio; token=37",
// or eleicao=, semaforo=. No header is no guard; a malformed one is 400.
func guardOf(c *gin.Context) (store.Guard, error) {
	h := c.GetHeader(guardHeader)
	if h == "" {
		return store.Guard{}, nil
	}
	var g store.Guard
	for _, part := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k = strings.TrimSpace(k); k {
		case "lock", "eleicao", "semaforo":
			if g.Kind != "" {
				return g, badGuard()
			}
			g.Kind, g.Resource = k, strings.TrimSpace(v)
		case "token":
			t, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || t < 1 {
				return g, badGuard()
			}
			g.Token = t
		default:
			return g, badGuard()
		}
	}
	if g.Kind == "" || g.Token == 0 || !validIdentifier(g.Resource) {
		return g, badGuard()
	}
	return g, nil
}

func badGuard() error {
	return &apiError{status: http.StatusBadRequest, msg: "Cabeçalho Etcdapi-Guarda inválido", campos: map[string]string{guardHeader: guardProblem}}
}

// staleGuard is what a refused guarded write adds to its 409: who holds now
// (token_atual null when nobody does).
func staleGuard(e *store.StaleGuardError) gin.H {
	var current any
	if e.Current > 0 {
		current = e.Current
	}
	return gin.H{"guarda": e.Kind, "recurso": e.Resource, "token": e.Token, "token_atual": current}
}

// conditions reads a write's If-Match and Etcdapi-Guarda headers.
func conditions(c *gin.Context) (rev int64, g store.Guard, err error) {
	if rev, err = ifMatch(c); err != nil {
		return 0, g, err
	}
	g, err = guardOf(c)
	return rev, g, err
}
