package server

import (
	"bytes"
	"context"
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

// checkAgainstOpenAPI validates a JSON answer of the test suite against openapi.json.
func checkAgainstOpenAPI(t testing.TB, req *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return // streams, metrics and snapshots are described, not validated
	}
	req.URL.Scheme, req.URL.Host = "", ""
	route, params, err := openAPIRouter.FindRoute(req)
	if err != nil {
		if w.Code != 404 && w.Code != 405 && w.Code != 400 {
			t.Errorf("openapi.json has no route for %s %s (answered %d)", req.Method, req.URL.Path, w.Code)
		}
		return
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: w.Code,
		Header: w.Header(),
		Body:   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
	})
	if err != nil {
		t.Errorf("%s %s answered %d, not as openapi.json says: %v\n%s", req.Method, req.URL.Path, w.Code, err, w.Body)
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
