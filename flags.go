package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// setting is one setting as its struct tags describe it, with its command-line flag.
type setting struct {
	Flag, Var, Default, Desc string
	Bool                     bool
}

// etcdFlags names the flags of etcd's own settings as etcd and etcdctl name them;
// every other setting's flag is its variable in kebab case (ETCD_JOIN: --join).
var etcdFlags = map[string]string{
	"ETCD_QUOTA_BYTES": "quota-backend-bytes",
	"ETCD_USERNAME":    "user",
	"ETCD_CA_FILE":     "cacert",
	"ETCD_CERT_FILE":   "cert",
	"ETCD_KEY_FILE":    "key",
	// --log-level is etcd's (SPEC §2), so etcdapi's own log settings take a prefix.
	"LOG_LEVEL":  "api-log-level",
	"LOG_FORMAT": "api-log-format",
}

// allSettings lists every setting from the envconfig tags of the settings struct,
// so a new field gets its flag, its -h line and its .env variable at once.
func allSettings() []setting {
	var list []setting
	var cfg settings
	parts := reflect.ValueOf(cfg)
	for i := range parts.NumField() {
		t := parts.Field(i).Type()
		for j := range t.NumField() {
			f := t.Field(j)
			s := setting{Var: f.Tag.Get("envconfig"), Default: f.Tag.Get("default"), Desc: f.Tag.Get("desc"), Bool: f.Type.Kind() == reflect.Bool}
			if s.Flag = etcdFlags[s.Var]; s.Flag == "" {
				s.Flag = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.Var, "ETCD_"), "_", "-"))
			}
			list = append(list, s)
		}
	}
	return list
}

// flagValue records a setting given on the command line; envconfig validates it later.
type flagValue struct {
	s   setting
	got map[string]string
}

func (v flagValue) String() string   { return "" }
func (v flagValue) IsBoolFlag() bool { return v.s.Bool }
func (v flagValue) Set(x string) error {
	v.got[v.s.Var] = x
	return nil
}

// settingsFlags is a flag set with one flag per setting; parsed, got maps each given
// setting's variable to its value.
func settingsFlags(name string) (fs *flag.FlagSet, got map[string]string) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back as one line; -h prints usage()
	got = map[string]string{}
	for _, s := range allSettings() {
		fs.Var(flagValue{s, got}, s.Flag, s.Desc)
	}
	return fs, got
}

// parseFlags parses args into the environment (a flag wins over the environment and .env)
// and returns what is left after the flags. -h gives flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, got map[string]string, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	for k, v := range got {
		os.Setenv(k, v)
	}
	return fs.Args(), nil
}

// settingName names a setting in an error: its flag when the flag gave it.
func settingName(got map[string]string, variable string) string {
	if _, ok := got[variable]; ok {
		for _, s := range allSettings() {
			if s.Var == variable {
				return fmt.Sprintf("--%s (%s)", s.Flag, variable)
			}
		}
	}
	return variable
}
