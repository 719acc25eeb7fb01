package server

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen[0] != "tcp://127.0.0.1:7000" || c.Frame != "line" || c.MaxKey != 1024 || c.ConnBufferLimit != 1<<20 ||
		c.PreambleTimeout != 5*time.Second || c.OwnerWait != 3*time.Second || c.DrainTimeout != 10*time.Second {
		t.Fatalf("defaults changed: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Listen = nil }, "no listen address"},
		{func(c *Config) { c.Listen = []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:1"} }, "given twice"},
		{func(c *Config) { c.Listen = []string{"udp://127.0.0.1:1"} }, `unsupported scheme "udp"`},
		{func(c *Config) { c.Workers = 0 }, "workers 0"},
		{func(c *Config) { c.Workers = MaxWorkers + 1 }, "workers 257"},
		{func(c *Config) { c.Frame = "" }, `frame ""`},
		{func(c *Config) { c.Forward = "teleport" }, `forward "teleport"`},
		{func(c *Config) { c.MaxKey = 0 }, "max key 0"},
		{func(c *Config) { c.MaxKey = 65536 }, "max key 65536"},
		{func(c *Config) { c.PreambleTimeout = 0 }, "preamble timeout"},
		{func(c *Config) { c.OwnerWait = -1 }, "owner wait"},
		{func(c *Config) { c.DrainTimeout = 0 }, "drain timeout"},
		{func(c *Config) { c.SecretFile, c.Secret = "f", []byte("s") }, "both a secret and a secret file"},
		{func(c *Config) { c.ConnBufferLimit = 0 }, "conn buffer limit"},
		{func(c *Config) { c.MaxRestarts = 0 }, "max restarts"},
		{func(c *Config) { c.RestartBackoff = 0 }, "restart backoff"},
		{func(c *Config) { c.MaxRestartBackoff = time.Millisecond }, "max restart backoff"},
		{func(c *Config) { c.MaxConns = -1 }, "max conns -1"},
		{func(c *Config) { c.KeepAlive = 0 }, "keepalive 0s"},
		{func(c *Config) { c.KeepAlive = time.Millisecond }, "keepalive 1ms"},
		{func(c *Config) { c.IdleTimeout = -1 }, "idle timeout"},
		{func(c *Config) { c.TicketKeyRotation = 0 }, "TLS ticket key rotation 0s"},
		{func(c *Config) { c.Listen = []string{"tls://127.0.0.1:0"} }, "needs at least one certificate"},
		{func(c *Config) {
			c.Listen = []string{"tls://127.0.0.1:0"}
			c.TLS.Certs = []CertFile{{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}}
		}, "no such file"},
		{func(c *Config) {
			c.Listen = []string{"tls://127.0.0.1:0"}
			c.TLS.Certs = []CertFile{{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}}
			c.TLS.MinVersion = "1.0"
		}, "min version"},
		{func(c *Config) {
			c.TLS.Certs = []CertFile{{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}}
		}, "no tls:// listener"},
		{func(c *Config) { c.TLS.ClientCA = "/nonexistent.pem" }, "no tls:// listener"},
	} {
		c := DefaultConfig()
		tc.change(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an ErrConfig with %q, got %v", tc.want, err)
		}
	}
}

func TestParseListenURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://127.0.0.1:7000": "tcp://127.0.0.1:7000",
		"tcp://:7000":          "tcp://:7000",
		"tcp://[::1]:0":        "tcp://[::1]:0",
		"tcp://localhost:80":   "tcp://localhost:80",
		"unix:///run/s.sock":   "unix:///run/s.sock",
		"tls://127.0.0.1:8443": "tls://127.0.0.1:8443",
	} {
		a, err := ParseListenURL(in)
		if err != nil || a.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{
		"tcp://127.0.0.1", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:x",
		"tcp://127.0.0.1:1/path", "unix://relative", "unix://", "tls://127.0.0.1", "tls:///path", "tcp://u@h:1",
	} {
		if a, err := ParseListenURL(in); err == nil {
			t.Errorf("%s: accepted as %v", in, a)
		}
	}
}

func TestLoadSecret(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{
		"s3cret\n":       "s3cret",
		"s3cret\r\n":     "s3cret",
		"s3cret":         "s3cret",
		"s3cret\n\n":     "s3cret\n",
		"\x00\xff bin\n": "\x00\xff bin",
	} {
		c := Config{SecretFile: write("s", content)}
		got, err := loadSecret(&c, log)
		if err != nil || string(got) != want {
			t.Errorf("file %q: %q, %v; want %q", content, got, err, want)
		}
	}
	for _, content := range []string{"", "\n"} {
		c := Config{SecretFile: write("e", content)}
		if _, err := loadSecret(&c, log); err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("file %q: %v, want an empty-file error", content, err)
		}
	}
	c := Config{SecretFile: filepath.Join(dir, "missing")}
	if _, err := loadSecret(&c, log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	c = Config{Secret: []byte("given")}
	if got, _ := loadSecret(&c, log); string(got) != "given" {
		t.Errorf("Config.Secret: %q", got)
	}
	a, _ := loadSecret(&Config{}, log)
	b, _ := loadSecret(&Config{}, log)
	if len(a) != 32 || string(a) == string(b) {
		t.Errorf("generated secrets %x and %x: want 32 random bytes each", a, b)
	}
}
