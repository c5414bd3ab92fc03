package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
)

var registerValidations sync.Once

// bind decodes the body's fields into dst, a struct with json and binding tags,
// and validates it. Every bad field is named in one 400, with problems' text.
func bind(body map[string]json.RawMessage, dst any, problems map[string]string) error {
	registerValidations.Do(func() {
		binding.Validator.Engine().(*validator.Validate).RegisterValidation("identifier", func(fl validator.FieldLevel) bool {
			return validIdentifier(fl.Field().String())
		})
	})
	bad := map[string]string{}
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	jsonName := func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	}
	for i := range t.NumField() {
		name := jsonName(t.Field(i))
		// Type errors first: encoding/json would stop at the first one.
		if raw, ok := body[name]; ok && json.Unmarshal(raw, v.Field(i).Addr().Interface()) != nil {
			bad[name] = problems[name]
		}
	}
	var verrs validator.ValidationErrors
	if err := binding.Validator.ValidateStruct(dst); errors.As(err, &verrs) {
		for _, fe := range verrs {
			f, _ := t.FieldByName(fe.StructField())
			if name := jsonName(f); bad[name] == "" {
				bad[name] = problems[name]
			}
		}
	}
	if len(bad) > 0 {
		return &apiError{status: http.StatusBadRequest, msg: "Dados inválidos", campos: bad}
	}
	return nil
}
