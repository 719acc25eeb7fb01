package server

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
)

// generatedSecretSize is the size of a secret the master generates.
const generatedSecretSize = 32

// loadSecret returns the secret of cfg: Config.Secret, the content of
// Config.SecretFile without one trailing newline, or a new random one.
func loadSecret(cfg *Config, log *slog.Logger) ([]byte, error) {
	switch {
	case len(cfg.Secret) > 0:
		return bytes.Clone(cfg.Secret), nil
	case cfg.SecretFile != "":
		b, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret file: %w", err)
		}
		if bytes.HasSuffix(b, []byte("\r\n")) {
			b = b[:len(b)-2]
		} else if bytes.HasSuffix(b, []byte("\n")) {
			b = b[:len(b)-1]
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("secret file %s is empty", cfg.SecretFile)
		}
		if fi, err := os.Stat(cfg.SecretFile); err == nil && fi.Mode().Perm()&0o004 != 0 {
			log.Warn("the secret file is readable by every user", "file", cfg.SecretFile, "mode", fi.Mode().Perm().String())
		}
		if len(b) < 16 {
			log.Warn("the secret is short; use 32 random bytes or more", "bytes", len(b))
		}
		return b, nil
	}
	b := make([]byte, generatedSecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate a secret: %w", err)
	}
	return b, nil
}
