package server

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// listenForms lists the forms of a listen address, for error messages.
const listenForms = "tcp://HOST:PORT, tls://HOST:PORT, unix:///path or HOST:PORT"

// withListenScheme gives a listen address without a scheme its implied
// one: "/path" is a Unix socket, anything else (HOST:PORT, :PORT) TCP.
func withListenScheme(s string) string {
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	if strings.HasPrefix(s, "/") {
		return "unix://" + s
	}
	return "tcp://" + s
}

// SocketFileOptions are the mode and owner the master gives a Unix
// socket file it binds, from the options of its listen URL:
//
//	unix:///run/app.sock?mode=0660&group=app
//
// The file is created inaccessible (umask 0777 while binding) and then
// given its owner and mode, so that no client can connect in between.
// Changing the owner needs the privilege to (root, or for the group one
// the user belongs to); the listener fails to bind otherwise.
type SocketFileOptions struct {
	// Mode is the file's permission bits (0 to 0777; connecting needs
	// write permission). 0 means unset: the process's umask decides.
	Mode os.FileMode `json:"mode,omitempty"`
	// Owner is a user name or numeric uid; "" leaves the process's own.
	Owner string `json:"owner,omitempty"`
	// Group is a group name or numeric gid; "" leaves the process's own.
	Group string `json:"group,omitempty"`
}

// isSet reports whether any option is given.
func (o SocketFileOptions) isSet() bool { return o.Mode != 0 || o.Owner != "" || o.Group != "" }

// parseSocketOptions parses the query of a unix:// listen URL into
// a.SocketFile.
func (a *ListenAddr) parseSocketOptions(rawQuery string) error {
	if rawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("socket options %q: want mode=0660&owner=USER&group=GROUP: %w", rawQuery, err)
	}
	for k, vs := range q {
		if len(vs) != 1 || vs[0] == "" {
			return fmt.Errorf("socket option %s: want one value", k)
		}
		v := vs[0]
		switch k {
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m == 0 || m > 0o777 {
				return fmt.Errorf("socket option mode=%s: want octal permission bits 0001 to 0777, such as 0660", v)
			}
			a.SocketFile.Mode = os.FileMode(m)
		case "owner":
			a.SocketFile.Owner = v
		case "group":
			a.SocketFile.Group = v
		default:
			return fmt.Errorf("unknown socket option %q: want mode, owner or group", k)
		}
	}
	return nil
}

// restrictUmask sets the umask to 0777 so that a socket file bound now is
// created with no permission at all, and returns a function that restores
// the previous umask and returns it. The umask is the process's: the
// master binds its listeners before it starts anything else that creates
// files, and a file created meanwhile would only be created too strict.
func restrictUmask() (restore func() int) {
	old := syscall.Umask(0o777)
	return func() int {
		syscall.Umask(old)
		return old
	}
}

// apply gives the socket file at path its owner and mode; umask is the
// process's umask, which decides the mode when none is set.
func (o SocketFileOptions) apply(path string, umask int) error {
	uid, gid := -1, -1
	if o.Owner != "" {
		id, err := lookupID(o.Owner, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return fmt.Errorf("socket owner %q: %w", o.Owner, err)
		}
		uid = id
	}
	if o.Group != "" {
		id, err := lookupID(o.Group, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return fmt.Errorf("socket group %q: %w", o.Group, err)
		}
		gid = id
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(path, uid, gid); err != nil {
			if errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("socket owner %q group %q: %w (changing the owner needs root; the group, a group of this user)", o.Owner, o.Group, err)
			}
			return fmt.Errorf("socket owner: %w", err)
		}
	}
	mode := o.Mode
	if mode == 0 {
		mode = os.FileMode(0o777 &^ umask)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("socket mode: %w", err)
	}
	return nil
}

// lookupID returns a numeric id as it is, or looks up a name.
func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	id, err := byName(s)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(id)
}

// displayAddr is how the master's logs show the listener: its scheme
// (tls:// for a TLS listener) and the address it bound (the port chosen
// for port 0).
func (ln *masterListener) displayAddr() string {
	a, err := ParseListenURL(ln.spec.URL)
	if err != nil {
		return ln.spec.Network + "://" + ln.spec.Address
	}
	a.Address = ln.spec.Address
	return a.String()
}
