package server

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestParseListenURLShorthand: an address without a scheme is TCP
// (HOST:PORT) or a Unix socket (/path), and bad ones say what is wanted.
func TestParseListenURLShorthand(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7000": "tcp://127.0.0.1:7000",
		"localhost:7000": "tcp://localhost:7000",
		":7000":          "tcp://:7000",
		"[::1]:7000":     "tcp://[::1]:7000",
		"/run/app.sock":  "unix:///run/app.sock",
	} {
		a, err := ParseListenURL(in)
		if err != nil || a.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, a, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                  "want tcp://HOST:PORT, tls://HOST:PORT, unix:///path or HOST:PORT",
		"127.0.0.1":         "want tcp://HOST:PORT",
		"127.0.0.1:x":       "want tcp://HOST:PORT",
		"::1:7000":          "want tcp://HOST:PORT",
		"http://h:1":        `unsupported scheme "http" (want tcp://HOST:PORT, tls://HOST:PORT, unix:///path or HOST:PORT)`,
		"tls://127.0.0.1":   "want tls://HOST:PORT",
		"tcp://h:1?mode=1":  "want tcp://HOST:PORT",
		"relative/sock":     "want tcp://HOST:PORT",
		"unix://rel/a.sock": "want unix:///absolute/path",
	} {
		_, err := ParseListenURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}

// TestParseSocketOptions: mode, owner and group of a unix:// listener.
func TestParseSocketOptions(t *testing.T) {
	a, err := ParseListenURL("unix:///run/a.sock?mode=0660&owner=app&group=1001")
	if err != nil {
		t.Fatal(err)
	}
	if want := (SocketFileOptions{Mode: 0o660, Owner: "app", Group: "1001"}); a.SocketFile != want || a.Address != "/run/a.sock" {
		t.Errorf("got %+v", a)
	}
	if a, err := ParseListenURL("/run/a.sock?mode=600"); err != nil || a.SocketFile.Mode != 0o600 {
		t.Errorf("/run/a.sock?mode=600: %+v, %v", a, err)
	}
	for in, want := range map[string]string{
		"unix:///a?mode=0999":        "want octal permission bits",
		"unix:///a?mode=01777":       "want octal permission bits",
		"unix:///a?mode=0":           "want octal permission bits",
		"unix:///a?mode=rw":          "want octal permission bits",
		"unix:///a?mode=0600&mode=1": "want one value",
		"unix:///a?owner=":           "want one value",
		"unix:///a?perm=0600":        `unknown socket option "perm": want mode, owner or group`,
		"unix:///a?mode=%zz":         "want mode=0660&owner=USER&group=GROUP",
	} {
		_, err := ParseListenURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}

// TestUnixListenerMode binds real Unix listeners with socket options and
// checks the file's mode and group, and that a client connects.
func TestUnixListenerMode(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	for i, tc := range []struct {
		opts string
		mode os.FileMode
	}{
		{"mode=0600", 0o600},
		{"mode=0666", 0o666},
		{"mode=0660&group=" + strconv.Itoa(gid), 0o660},
		{"owner=" + strconv.Itoa(os.Getuid()) + "&mode=0640", 0o640},
	} {
		path := filepath.Join(dir, strconv.Itoa(i)+".sock")
		ln, err := bindListener("unix://" + path + "?" + tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.opts, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tc.mode {
			t.Errorf("%s: file mode %v, want a socket with %v", tc.opts, fi.Mode(), tc.mode)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Errorf("%s: dial: %v", tc.opts, err)
		} else {
			c.Close()
		}
		ln.close()
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: socket file left after close: %v", tc.opts, err)
		}
	}
	// Without options the umask decides, as before.
	old := restrictUmask()
	umask := old()
	path := filepath.Join(dir, "plain.sock")
	ln, err := bindListener("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != os.FileMode(0o777&^umask) {
		t.Errorf("no options: %v, %v; want %v", fi.Mode(), err, os.FileMode(0o777&^umask))
	}
}

// TestUnixListenerOwnerRefused: a group the user may not give the file
// (not root) fails the bind with a message that says why, and leaves
// neither a socket file nor a changed umask.
func TestUnixListenerOwnerRefused(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root may give the socket any owner")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sock")
	probe := restrictUmask()
	before := probe()
	_, err := bindListener("unix://" + path + "?owner=0")
	if err == nil || !strings.Contains(err.Error(), "needs root") {
		t.Errorf("owner=0 as uid %d: %v, want a permission error", os.Getuid(), err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left: %v", err)
	}
	probe = restrictUmask()
	if after := probe(); after != before {
		t.Errorf("umask %o after the bind, was %o", after, before)
	}
	if _, err := bindListener("unix://" + path + "?group=no-such-group-here"); err == nil || !strings.Contains(err.Error(), `socket group "no-such-group-here"`) {
		t.Errorf("unknown group: %v", err)
	}
}

// TestMasterLogAddr: the master's start-up line shows a tls:// listener
// as tls://, with the port it bound.
func TestMasterLogAddr(t *testing.T) {
	for _, u := range []string{"tls://127.0.0.1:0", "127.0.0.1:0", "tcp://127.0.0.1:0"} {
		ln, err := bindListener(u)
		if err != nil {
			t.Fatal(err)
		}
		got := ln.displayAddr()
		ln.close()
		scheme := "tcp://"
		if strings.HasPrefix(u, "tls") {
			scheme = "tls://"
		}
		if !strings.HasPrefix(got, scheme+"127.0.0.1:") || strings.HasSuffix(got, ":0") {
			t.Errorf("%s: shown as %s, want %s127.0.0.1:<port>", u, got, scheme)
		}
	}
}
