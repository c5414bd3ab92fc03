package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

var openAPIRouter = func() routers.Router {
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		panic(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		panic("openapi.json is not a valid OpenAPI 3 document: " + err.Error())
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		panic(err)
	}
	return r
}()

// checkAgainstOpenAPI holds one exchange of the test suite to openapi.json: the
// status is one the operation lists (500 aside: a bug is listed nowhere), the
// answer's Content-Type is one it lists, a JSON answer matches its schema, and a
// request the server took (2xx) is one the document takes too.
func checkAgainstOpenAPI(t testing.TB, req *http.Request, body string, w *httptest.ResponseRecorder) {
	t.Helper()
	if req.Method == http.MethodHead {
		return
	}
	if req.Header.Get("Origin") != "" && (req.Method == http.MethodOptions || w.Code == http.StatusForbidden) {
		return // CORS preflight, or a foreign origin refused: answered before any route
	}
	req.URL.Scheme, req.URL.Host = "", ""
	route, params, err := openAPIRouter.FindRoute(req)
	if err != nil {
		if w.Code != 404 && w.Code != 405 && w.Code != 400 {
			t.Errorf("openapi.json has no route for %s %s (answered %d)", req.Method, req.URL.Path, w.Code)
		}
		return
	}
	exchange := fmt.Sprintf("%s %s answered %d", req.Method, req.URL.Path, w.Code)
	resp := route.Operation.Responses.Status(w.Code)
	if resp == nil && w.Code != http.StatusInternalServerError {
		t.Errorf("%s, a status openapi.json does not list for %s %s", exchange, req.Method, route.Path)
	}
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	ct := w.Header().Get("Content-Type")
	if w.Body.Len() > 0 && resp != nil && len(resp.Value.Content) > 0 && resp.Value.Content.Get(ct) == nil {
		t.Errorf("%s with Content-Type %q, which openapi.json does not list", exchange, ct)
	}
	input := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if w.Code/100 == 2 {
		req.Body = io.NopCloser(strings.NewReader(body)) // the server read it already
		if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
			t.Errorf("%s, but openapi.json refuses the request: %v\n%s", exchange, err, body)
		}
	}
	if !strings.HasPrefix(ct, "application/json") {
		return // streams, metrics, snapshots and the dashboard's files: only their type is checked
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 w.Code,
		Header:                 w.Header(),
		Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
	})
	if err != nil {
		t.Errorf("%s, not as openapi.json says: %v\n%s", exchange, err, w.Body)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	param := regexp.MustCompile(`[:*](\w+)`)
	for _, r := range New(st, testConfig(), slog.New(slog.DiscardHandler)).Routes() {
		if r.Method == "HEAD" {
			continue
		}
		path := param.ReplaceAllString(r.Path, "{$1}")
		req := httptest.NewRequest(r.Method, strings.NewReplacer("{", "x", "}", "x").Replace(path), nil)
		req.URL.Scheme, req.URL.Host = "", ""
		route, _, err := openAPIRouter.FindRoute(req)
		if err != nil || route.Path != path {
			t.Errorf("%s %s is not in openapi.json", r.Method, path)
		}
	}
	w := call(t, api, "GET", "/openapi.json", "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), openAPI) {
		t.Fatalf("/openapi.json: %d", w.Code)
	}
}

// The requests easiest to describe wrong: call checks that openapi.json takes
// each one the server took, and answers of every type it lists.
func TestOpenAPITakesWhatTheServerTakes(t *testing.T) {
	// Any JSON value is a configuration value, null and nested nulls included.
	for _, v := range []string{`null`, `"texto"`, `42`, `-1.5`, `true`, `[]`, `[1, null, "a"]`, `{}`, `{"a": null, "b": {"c": [null, {}]}}`} {
		expect(t, call(t, api, "PUT", "/config/openapi-valor", `{"valor": `+v+`}`), 200)
	}
	// The lock's acquire body may be left out; its release takes the token in the body.
	w := call(t, api, "POST", "/lock/openapi-sem-corpo", "")
	expect(t, w, 200)
	expect(t, call(t, api, "DELETE", "/lock/openapi-sem-corpo", `{"token": `+token(decode[obj](t, w))+`}`), 200)
	// PATCH is a JSON merge patch, sent as such.
	w = call(t, api, "POST", "/usuarios", `{"nome": "Patch", "cidade": "Recife"}`)
	expect(t, w, 201)
	id := decode[obj](t, w)["id"].(string)
	expect(t, call(t, api, "PATCH", "/usuarios/"+id, `{"cidade": null}`, "Content-Type", "application/merge-patch+json"), 200)
	// The dashboard is HTML, CSS and JavaScript.
	for _, f := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		expect(t, call(t, api, "GET", f, ""), 200)
	}
}

// What the server refuses, the document refuses too, so a validating proxy
// answers as the server would.
func TestOpenAPIRefusesConfigWithoutValor(t *testing.T) {
	for body, ok := range map[string]bool{`{"valor": null}`: true, `{"valor": [null]}`: true, `{}`: false, `{"value": 1}`: false, ``: false} {
		req := httptest.NewRequest("PUT", "/config/x", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.URL.Scheme, req.URL.Host = "", ""
		route, params, err := openAPIRouter.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		})
		if (err == nil) != ok {
			t.Errorf("PUT /config/x %q: openapi.json takes it: %v, want %v (%v)", body, err == nil, ok, err)
		}
		if w := call(t, api, "PUT", "/config/openapi-recusa", body); (w.Code == 200) != ok {
			t.Errorf("PUT /config %q: server answered %d", body, w.Code)
		}
	}
}
