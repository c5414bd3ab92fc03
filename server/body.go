package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	gojson "github.com/goccy/go-json"
)

// readObject reads the request body as a JSON object.
func readObject(c *gin.Context) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(c.Request.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, msg: "Corpo da requisição grande demais"}
	}
	if err != nil {
		return nil, badRequest("Corpo da requisição ilegível")
	}
	return objectFields(body)
}

// objectFields splits a JSON object into its fields, each compacted.
func objectFields(body []byte) (map[string]json.RawMessage, error) {
	body = bytes.Trim(body, " \t\r\n") // JSON's whitespace only (RFC 8259): not \f, \v, NBSP
	if len(body) == 0 {
		return nil, badRequest("Corpo JSON obrigatório")
	}
	// JSON is UTF-8 (RFC 8259); encoding/json would turn stray bytes into
	// U+FFFD in some places and store them as sent in others.
	if !utf8.Valid(body) {
		return nil, badRequest("JSON inválido: o corpo deve estar em UTF-8")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil { // values are stored as sent, minus the whitespace
		return nil, badRequest("JSON inválido")
	}
	if body[0] != '{' {
		return nil, badRequest("O corpo deve ser um objeto JSON")
	}
	var obj map[string]json.RawMessage
	// goccy/go-json (the decoder Gin's go_json tag picks) splits the object
	// in 40 % of encoding/json's time; the body is valid JSON already.
	if err := gojson.Unmarshal(compact.Bytes(), &obj); err != nil {
		return nil, badRequest("O corpo deve ser um objeto JSON")
	}
	return obj, nil
}

// readOptionalObject is readObject for routes whose body may be left out.
func readOptionalObject(c *gin.Context) (map[string]json.RawMessage, error) {
	if c.Request.ContentLength == 0 {
		return map[string]json.RawMessage{}, nil
	}
	return readObject(c)
}

// readInto reads the body into dst and validates it (see bind); an optional
// body may be left out.
func readInto(c *gin.Context, dst any, problems map[string]string, optional bool) error {
	read := readObject
	if optional {
		read = readOptionalObject
	}
	body, err := read(c)
	if err != nil {
		return err
	}
	return bind(body, dst, problems)
}

// etag is a revision as an HTTP entity tag.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// ifMatch reads If-Match as the revision a write expects (0: none given).
func ifMatch(c *gin.Context) (int64, error) {
	h := strings.TrimSpace(c.GetHeader("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || rev <= 0 {
		return 0, &apiError{status: http.StatusPreconditionFailed, msg: "If-Match não corresponde a nenhuma revisão"}
	}
	return rev, nil
}

const jsonType = "application/json; charset=utf-8"

// writeJSON writes body, JSON already, as the answer. Unlike gin's c.Data it
// declares no Content-Length, so endLine can still end it with a newline
// (net/http counts the length itself).
func writeJSON(c *gin.Context, status int, body []byte) {
	c.Header("Content-Type", jsonType)
	c.Status(status)
	c.Writer.Write(body)
}

// writeArray writes stored JSON documents as one array, without decoding them.
func writeArray(c *gin.Context, status int, docs [][]byte) {
	n := 2 + len(docs)
	for _, d := range docs {
		n += len(d)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, '[')
	for i, d := range docs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, d...)
	}
	buf = append(buf, ']')
	writeJSON(c, status, buf)
}
