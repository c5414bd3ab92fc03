package server

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"etcdapi/store"
)

// userRules are the constraints on the fields the API knows; any other field is kept as sent.
type userRules struct {
	Nome  string `json:"nome" binding:"required,max=200"`
	Email string `json:"email" binding:"omitempty,email,max=254"`
	Idade *int   `json:"idade" binding:"omitempty,min=0,max=150"`
}

var fieldProblems = map[string]string{
	"nome":  "obrigatório: um texto não vazio de até 200 caracteres",
	"email": "deve ser um endereço de email válido",
	"idade": "deve ser um número inteiro entre 0 e 150",
}

// newUser validates a client's fields and returns the document to store,
// with the server's own fields set (createdAt kept from the stored user, if
// any), and its email: exactly the field "email", "" for none.
func newUser(fields map[string]json.RawMessage, id, createdAt string) ([]byte, string, error) {
	var rules userRules
	if err := bind(fields, &rules, fieldProblems); err != nil {
		return nil, "", err
	}
	doc := make(map[string]json.RawMessage, len(fields)+3)
	for k, v := range fields {
		if !strings.HasPrefix(k, "_") && k != "criado_em" && k != "atualizado_em" {
			doc[k] = v
		}
	}
	for _, k := range []string{"email", "idade"} {
		if string(doc[k]) == "null" {
			delete(doc, k) // absent, not a value
		}
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if createdAt == "" {
		createdAt = now
	}
	doc["_id"], _ = json.Marshal(id)
	doc["criado_em"], _ = json.Marshal(createdAt)
	doc["atualizado_em"] = []byte(`"` + now + `"`) // RFC 3339: nothing to escape
	return encodeObject(doc), rules.Email, nil
}

// encodeObject writes fields as a JSON object with sorted keys, as
// json.Marshal would, without re-validating values that are compact JSON already
// (readObject compacted the body): a third of the cost of creating a user.
func encodeObject(fields map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(fields)) // sized: slices.Sorted(maps.Keys) grows it, 10 % of newUser
	n := 2
	for k, v := range fields {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	buf := make([]byte, 0, n)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		if strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' }) {
			q, _ := json.Marshal(k)
			buf = append(buf, q...)
		} else {
			buf = append(append(append(buf, '"'), k...), '"')
		}
		buf = append(append(buf, ':'), fields[k]...)
	}
	return append(buf, '}')
}

func (s *server) createUser(c *gin.Context) {
	fields, err := readObject(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	g, err := guardOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := uuid.NewString()
	doc, email, err := newUser(fields, id, "")
	if err != nil {
		s.fail(c, err)
		return
	}
	rev, err := s.store.CreateUser(c.Request.Context(), id, email, doc, g)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/usuarios/"+id)
	c.Header(etagHeader, etag(rev))
	// Written by hand: the stored document is valid JSON already, no need to re-encode it.
	body := make([]byte, 0, len(doc)+160)
	body = append(body, `{"mensagem":"Usuário criado com sucesso","id":"`...)
	body = append(body, id...)
	body = append(body, `","chave":"`...)
	body = append(body, store.UserKey(id)...)
	body = append(body, `","usuario":`...)
	body = append(append(body, doc...), '}')
	writeJSON(c, http.StatusCreated, body)
}

func (s *server) getUser(c *gin.Context) {
	id := c.Param("id")
	doc, rev, err := s.store.GetUser(c.Request.Context(), id)
	if err == nil {
		reread, answered := s.awaitChange(c, store.UserKey(id), rev)
		if answered {
			return
		}
		if reread {
			doc, rev, err = s.store.GetUser(c.Request.Context(), id)
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header(etagHeader, etag(rev))
	writeJSON(c, http.StatusOK, doc)
}

// replaceUser is PUT: the body replaces every field but _id and criado_em.
func (s *server) replaceUser(c *gin.Context) {
	s.updateUser(c, func(_ []byte, body map[string]json.RawMessage) (map[string]json.RawMessage, error) {
		return body, nil
	})
}

// patchUser is PATCH: the body is a JSON merge patch (RFC 7396) on the stored user.
func (s *server) patchUser(c *gin.Context) {
	s.updateUser(c, func(cur []byte, body map[string]json.RawMessage) (map[string]json.RawMessage, error) {
		if json.Unmarshal(cur, new(map[string]json.RawMessage)) != nil {
			return nil, store.ErrUnreadable // written by another client: nothing to patch (PUT replaces it)
		}
		patch, _ := json.Marshal(body)
		merged, err := jsonpatch.MergePatch(cur, patch)
		if err != nil {
			return nil, badRequest("Merge patch inválido")
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(merged, &fields); err != nil {
			return nil, badRequest("Merge patch inválido")
		}
		return fields, nil
	})
}

// updateUser applies edit to the stored user as one compare-and-swap.
func (s *server) updateUser(c *gin.Context, edit func(cur []byte, body map[string]json.RawMessage) (map[string]json.RawMessage, error)) {
	body, err := readObject(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	rev, g, err := conditions(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	doc, rev, err := s.store.UpdateUser(c.Request.Context(), id, rev, g, func(cur []byte) ([]byte, error) {
		fields, err := edit(cur, body)
		if err != nil {
			return nil, err
		}
		var kept struct {
			CriadoEm string `json:"criado_em"`
		}
		json.Unmarshal(cur, &kept)
		doc, _, err := newUser(fields, id, kept.CriadoEm)
		return doc, err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header(etagHeader, etag(rev))
	c.JSON(http.StatusOK, gin.H{"mensagem": "Usuário atualizado", "id": id, "usuario": json.RawMessage(doc)})
}

func (s *server) deleteUser(c *gin.Context) {
	rev, g, err := conditions(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	id := c.Param("id")
	if err := s.store.DeleteUser(c.Request.Context(), id, rev, g); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"mensagem": "Usuário deletado", "id": id})
}

// searchUsers answers every user whose nome contains ?nome=, or with
// ?limite=N one page and a Link to the next, as the listing does.
func (s *server) searchUsers(c *gin.Context) {
	q := c.Query("nome")
	if strings.TrimSpace(q) == "" {
		s.fail(c, &apiError{status: http.StatusBadRequest, msg: "Parâmetro nome obrigatório", campos: map[string]string{"nome": "obrigatório"}})
		return
	}
	n, rev, after, paged, err := pageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !paged {
		s.streamArray(c, func(fn func(docs [][]byte) error) error {
			return s.store.EachFoundUserPage(c.Request.Context(), q, fn)
		})
		return
	}
	page, err := s.store.SearchUsers(c.Request.Context(), q, rev, after, n)
	if err != nil {
		s.fail(c, err)
		return
	}
	if page.More {
		next := "/usuarios/buscar?nome=" + url.QueryEscape(q) + "&limite=" + strconv.Itoa(n) + "&cursor=" + makeCursor(page.Revision, page.LastID)
		c.Header("Link", "<"+next+`>; rel="next"`)
	}
	writeArray(c, http.StatusOK, page.Docs)
}

// pageParams reads ?limite= and ?cursor=; paged tells whether either was given.
func pageParams(c *gin.Context) (n int, rev int64, after string, paged bool, err error) {
	limite, cursor := c.Query("limite"), c.Query("cursor")
	if limite == "" && cursor == "" {
		return 0, 0, "", false, nil
	}
	n = 100
	if limite != "" {
		if n, err = strconv.Atoi(limite); err != nil || n < 1 || n > 1000 {
			return 0, 0, "", true, badRequest("limite deve ser um inteiro entre 1 e 1000")
		}
	}
	rev, after, err = parseCursor(cursor)
	return n, rev, after, true, err
}

// listUsers answers every user, or with ?limite=N one page and a Link to the next.
func (s *server) listUsers(c *gin.Context) {
	n, rev, after, paged, err := pageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !paged {
		s.streamArray(c, func(fn func(docs [][]byte) error) error {
			return s.store.EachUserPage(c.Request.Context(), fn)
		})
		return
	}
	page, err := s.store.ListUsers(c.Request.Context(), rev, after, n)
	if err != nil {
		s.fail(c, err)
		return
	}
	if page.More {
		next := "/usuarios?limite=" + strconv.Itoa(n) + "&cursor=" + makeCursor(page.Revision, page.LastID)
		c.Header("Link", "<"+next+`>; rel="next"`)
	}
	writeArray(c, http.StatusOK, page.Docs)
}

// streamArray writes the pages each hands over as one array: memory stays
// flat however many users there are. The status is sent with the first page,
// so an etcd failure before it is still a 503.
func (s *server) streamArray(c *gin.Context, each func(fn func(docs [][]byte) error) error) {
	w := c.Writer
	started := false
	err := each(func(docs [][]byte) error {
		if started {
			// The page before goes out now. A one-page answer that fits
			// net/http's buffer goes out whole, with a Content-Length.
			w.Flush()
		}
		for _, d := range docs {
			if !started {
				c.Header("Content-Type", jsonType)
				c.Status(http.StatusOK)
				w.WriteString("[")
				started = true
			} else {
				w.WriteString(",")
			}
			w.Write(d)
		}
		return nil
	})
	switch {
	case err != nil && !started:
		s.fail(c, err)
	case err != nil:
		// Too late for a status code: cut the connection so the client sees a broken array.
		level := slog.LevelError
		if c.Request.Context().Err() != nil {
			level = slog.LevelDebug // the client left (or the server is shutting down): nothing went wrong here
		}
		s.log.Log(c.Request.Context(), level, "listing users cut short", "request_id", requestIDOf(c), "err", err)
		panic(http.ErrAbortHandler)
	case !started:
		writeJSON(c, http.StatusOK, []byte("[]"))
	default:
		w.WriteString("]")
	}
}

func makeCursor(rev int64, lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(rev, 10) + "/" + lastID))
}

func parseCursor(cursor string) (rev int64, after string, err error) {
	if cursor == "" {
		return 0, "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	r, id, ok := strings.Cut(string(raw), "/")
	// Any id will do: the listing's range keeps the read under /users/, and
	// another client may have written keys that are not identifiers.
	if err == nil && ok && id != "" {
		if rev, err = strconv.ParseInt(r, 10, 64); err == nil && rev > 0 {
			return rev, id, nil
		}
	}
	return 0, "", badRequest("cursor inválido")
}
