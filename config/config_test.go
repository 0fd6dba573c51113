package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestPrecedence sets each setting at several levels and checks that the
// highest one wins: defaults < YAML file < FORETOKEN_* env < flags.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "foretoken.yaml")
	yaml := `
host: 0.0.0.0
port: 9000
parallel: 3
batch: false
threads: 7
keep-alive: 1m
models: [/from/file/a, /from/file/b]
model:
  - /file/x.gguf=xx
cors-origin: [http://file.example]
api-key: file-key
max-loaded: 2
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c Config)
	}{
		{
			name: "defaults only",
			check: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c, Default()) {
					t.Errorf("got %+v, want defaults %+v", c, Default())
				}
			},
		},
		{
			name:  "file over defaults",
			flags: []string{"--config", file},
			check: func(t *testing.T, c Config) {
				want := Config{Host: "0.0.0.0", Port: 9000, Parallel: 3, Batch: false, Queue: 16, Threads: 7,
					KeepAlive: time.Minute, ModelDirs: []string{"/from/file/a", "/from/file/b"},
					Models:      []ModelSpec{{Path: "/file/x.gguf", Alias: "xx"}},
					CORSOrigins: []string{"http://file.example"}, APIKey: "file-key", MaxLoaded: 2,
					MaxBody: 8 << 20, Grace: 10 * time.Second, WriteTimeout: 30 * time.Second}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name:  "env over file",
			env:   map[string]string{"FORETOKEN_PORT": "9100", "FORETOKEN_KEEP_ALIVE": "30s", "FORETOKEN_MODELS": "/env/a,/env/b", "FORETOKEN_CTX_SIZE": "512", "FORETOKEN_WRITE_TIMEOUT": "5s"},
			flags: []string{"--config", file},
			check: func(t *testing.T, c Config) {
				if c.WriteTimeout != 5*time.Second {
					t.Errorf("write timeout %v, want 5s", c.WriteTimeout)
				}
				if c.Port != 9100 || c.KeepAlive != 30*time.Second || c.CtxSize != 512 {
					t.Errorf("port %d keep-alive %v ctx %d, want 9100 30s 512", c.Port, c.KeepAlive, c.CtxSize)
				}
				if !reflect.DeepEqual(c.ModelDirs, []string{"/env/a", "/env/b"}) {
					t.Errorf("model dirs %q", c.ModelDirs)
				}
				if c.Host != "0.0.0.0" || c.Threads != 7 {
					t.Errorf("file values lost: host %q threads %d", c.Host, c.Threads)
				}
			},
		},
		{
			name: "config file named by env",
			env:  map[string]string{"FORETOKEN_CONFIG": file},
			check: func(t *testing.T, c Config) {
				if c.Port != 9000 {
					t.Errorf("port %d, want 9000 from the file", c.Port)
				}
			},
		},
		{
			name:  "flags over env and file",
			env:   map[string]string{"FORETOKEN_PORT": "9100", "FORETOKEN_API_KEY": "env-key", "FORETOKEN_BATCH": "false"},
			flags: []string{"--config", file, "--batch=true", "--port", "9200", "--models", "/flag/dir", "-m", "/flag/m.gguf", "--cors-origin", "*"},
			check: func(t *testing.T, c Config) {
				if c.Port != 9200 {
					t.Errorf("port %d, want 9200", c.Port)
				}
				if !c.Batch {
					t.Error("--batch=true lost to the env and file")
				}
				if c.APIKey != "env-key" {
					t.Errorf("api key %q, want env-key", c.APIKey)
				}
				if !reflect.DeepEqual(c.ModelDirs, []string{"/flag/dir"}) || !reflect.DeepEqual(c.Models, []ModelSpec{{Path: "/flag/m.gguf"}}) {
					t.Errorf("dirs %q models %+v", c.ModelDirs, c.Models)
				}
				if !reflect.DeepEqual(c.CORSOrigins, []string{"*"}) {
					t.Errorf("cors %q", c.CORSOrigins)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			AddFlags(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fs)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
	}{
		{"missing config file", []string{"--config", "/nonexistent/foretoken.yaml"}},
		{"zero parallel", []string{"--parallel", "0"}},
		{"port out of range", []string{"--port", "70000"}},
		{"negative ctx", []string{"--ctx-size", "-1"}},
		{"zero write timeout", []string{"--write-timeout", "0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			AddFlags(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(fs); err == nil {
				t.Errorf("Load(%q) succeeded, want an error", tc.flags)
			}
		})
	}
}

func TestParseModelSpec(t *testing.T) {
	tests := []struct {
		in   string
		want ModelSpec
	}{
		{"/m/a.gguf", ModelSpec{Path: "/m/a.gguf"}},
		{"/m/a.gguf=tiny", ModelSpec{Path: "/m/a.gguf", Alias: "tiny"}},
		{"/m/x=y/a.gguf", ModelSpec{Path: "/m/x=y/a.gguf"}},
		{"/m/a.gguf=", ModelSpec{Path: "/m/a.gguf="}},
	}
	for _, tc := range tests {
		got, err := ParseModelSpec(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseModelSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
