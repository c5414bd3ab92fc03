package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

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
