package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kind is one way a connection reaches its owner (shard 1 in these
// tests): accepted by the owner itself, or by shard 0 and forwarded
// (handed off in handoff mode, relayed in relay mode).
type kind struct {
	name string
	via  int
}

func kindsOf(mode string) []kind {
	fwd := "handed-off"
	if mode == ForwardRelay {
		fwd = "relayed"
	}
	return []kind{{"local", 1}, {fwd, 0}}
}

// readScript is what the handler does, phase by phase, with the read
// methods of a Conn; each phase writes what it saw as one line. Its
// expected output is what gnet's own Conn gives for the same buffered
// bytes (the local connection is served by gnet's Conn directly).
//
// Phase 1 sees "abcdef", the early bytes sent with the preamble (on a
// handed-off connection, the Conn's prefix of bytes the accepting worker
// read); it leaves "ef". Phase 2 sees "ef" and "ghij" that the client
// sent later (read by the owner's gnet): Peek and Next across the two;
// it leaves "ij". Phase 3 sees "ij" and "klm": Discard across the two,
// then empty buffers.
var readScript = []struct {
	send string // what the client sends before the phase
	ops  []string
	want string
}{
	{"abcdef",
		[]string{"B", "P-1", "P0", "P7", "N7", "B", "N2", "P2", "D1", "D0", "D-1", "P-1", "N1", "B"},
		"B6 P-1=abcdef P0=abcdef P7:short N7:short B6 N2=ab P2=cd D1=1 D0=0 D-1=0 P-1=def N1=d B2"},
	{"ghij",
		[]string{"B", "P-1", "P3", "P7", "N3", "B", "P-1", "N1", "B"},
		"B6 P-1=efghij P3=efg P7:short N3=efg B3 P-1=hij N1=h B2"},
	{"klm",
		[]string{"B", "P-1", "D3", "P-1", "N3", "N2", "B", "P1", "N1", "P-1", "N-1", "D5", "B"},
		"B5 P-1=ijklm D3=3 P-1=lm N3:short N2=lm B0 P1:short N1:short P-1= N-1= D5=0 B0"},
}

// runOps runs the read operations of ops on c and renders what they
// returned.
func runOps(c *Conn, ops []string) string {
	var out []string
	res := func(op string, b []byte, err error) {
		switch {
		case errors.Is(err, io.ErrShortBuffer):
			out = append(out, op+":short")
		case err != nil:
			out = append(out, op+":"+err.Error())
		default:
			out = append(out, op+"="+string(b))
		}
	}
	for _, op := range ops {
		var n int
		if len(op) > 1 {
			fmt.Sscanf(op[1:], "%d", &n)
		}
		switch op[0] {
		case 'B':
			out = append(out, fmt.Sprintf("B%d", c.Buffered()))
		case 'P':
			b, err := c.Peek(n)
			res(op, b, err)
		case 'N':
			b, err := c.Next(n)
			res(op, b, err)
		case 'D':
			d, err := c.Discard(n)
			if err != nil {
				out = append(out, op+":"+err.Error())
			} else {
				out = append(out, fmt.Sprintf("%s=%d", op, d))
			}
		}
	}
	return strings.Join(out, " ")
}

// TestReadMethods: Peek, Next, Discard and Buffered behave alike on a
// local connection (gnet's own Conn), a handed-off one whose early bytes
// sit in front of gnet's buffer, and a relayed one: partial Next, Next
// and Discard across the early bytes and the bytes the owner read
// itself, io.ErrShortBuffer consuming nothing.
func TestReadMethods(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		h := hs.h[1]
		h.open = func(c *Conn) {
			c.SetContext(0)
			_, _ = c.Write([]byte(infoLine(c)))
		}
		h.data = func(c *Conn) {
			phase := c.Context().(int)
			if phase >= len(readScript) {
				_, _ = c.Write([]byte("unexpected data\n"))
				return
			}
			c.SetContext(phase + 1)
			_, _ = c.Write([]byte(runOps(c, readScript[phase].ops) + "\n"))
		}
		hs.startBoth()
		for _, k := range kindsOf(mode) {
			key := keyFor(1, "read-"+k.name, 0)
			c := dialRaw(t, hs.own[k.via], key, []byte(readScript[0].send))
			in := c.readInfo(t)
			checkInfo(t, mode, c, in, key, 1, k.via)
			for i, ph := range readScript {
				if i > 0 {
					if _, err := io.WriteString(c, ph.send); err != nil {
						t.Fatal(err)
					}
				}
				line, err := c.r.ReadString('\n')
				if err != nil {
					t.Fatalf("%s, phase %d: %v", k.name, i+1, err)
				}
				if got := strings.TrimSuffix(line, "\n"); got != ph.want {
					t.Errorf("%s, phase %d:\n got %s\nwant %s", k.name, i+1, got, ph.want)
				}
			}
			c.Close()
		}
		hs.stopAll()
		h.checkBalanced(t)
	})
}

// TestHalfClose: a client that sends, then shuts down its write side,
// gets OnEOF on the owner, and still receives a reply the handler writes
// later (not from OnEOF), then EOF: local, handed-off and relayed, with
// a few bytes and with more than a socket buffer holds, and with a
// handler that reads nothing before OnEOF.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		h := hs.h[1]
		h.open = func(c *Conn) { c.SetContext(&bytes.Buffer{}) }
		h.data = func(c *Conn) {
			if bytes.HasPrefix(c.Key(), []byte("lazy-")) {
				return // leaves it all buffered until EOF
			}
			b, _ := c.Next(-1)
			c.Context().(*bytes.Buffer).Write(b)
		}
		h.eof = func(c *Conn) {
			got := c.Context().(*bytes.Buffer)
			b, _ := c.Next(-1)
			got.Write(b)
			c.Shard().AfterFunc(time.Millisecond, func() {
				_, _ = fmt.Fprintf(c, "after EOF, %d bytes:", got.Len())
				_, _ = c.Write(got.Bytes())
				_ = c.Close()
			})
		}
		hs.startBoth()
		cases := []struct {
			tag  string
			size int
		}{
			{"half", 5}, {"half", 600 << 10},
			// Read only in OnEOF: the early bytes and the rest are
			// still buffered then (below the 64 KiB a relayed
			// connection buffers before its reader waits).
			{"lazy", 5}, {"lazy", 40 << 10},
		}
		for _, k := range kindsOf(mode) {
			for _, tc := range cases {
				size := tc.size
				msg := make([]byte, size)
				rand.Read(msg)
				key := keyFor(1, tc.tag+"-"+k.name, size)
				c := dialRaw(t, hs.own[k.via], key, msg[:min(size, 3)])
				if _, err := c.Write(msg[min(size, 3):]); err != nil {
					t.Fatal(err)
				}
				if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				want := append([]byte(fmt.Sprintf("after EOF, %d bytes:", size)), msg...)
				if got := c.readAll(t); !bytes.Equal(got, want) {
					t.Errorf("%s, %s, %d bytes: got %d bytes back after EOF, want %d (equal prefix %d)", k.name, tc.tag, size, len(got), len(want), commonPrefix(got, want))
				}
				c.Close()
			}
		}
		h.waitCounts(t, "every OnClose", func(o, c int) bool { return o == c })
		hs.stopAll()
		h.checkBalanced(t)
	})
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestCloseAfterWrite: Close "closes the connection once what was
// written is sent" (Conn.Close). A handler that writes more than the
// socket takes at once and closes at once must have all of it reach a
// client that reads slowly: local, handed-off and relayed.
func TestCloseAfterWrite(t *testing.T) {
	t.Parallel()
	const size = 768 << 10 // within ConnBufferLimit
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		h := hs.h[1]
		payload := make([]byte, size)
		rand.Read(payload)
		h.open = func(c *Conn) {
			_, _ = c.Write(payload)
			_ = c.Close()
		}
		// Small socket buffers (the accepted sockets inherit the
		// listeners'), as under memory pressure or with a slow client:
		// most of the payload waits in the Conn's outbound buffer when
		// Close is called.
		hs.setListenerOption(syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
		hs.startBoth()
		for _, k := range kindsOf(mode) {
			t.Run(k.name, func(t *testing.T) {
				key := keyFor(1, "bye-"+k.name, 0)
				// A small receive window too.
				d := net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) {
						_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
					})
				}}
				nc, err := d.DialContext(context.Background(), "tcp", hs.own[k.via])
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(bound))
				if _, err := io.WriteString(nc, key+"\n"); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(nc)
				if err != nil && !errIsClosed(err) {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, payload) {
					t.Errorf("the client got %d of the %d bytes written before Close (err %v)", len(got), size, err)
				}
			})
		}
		hs.stopAll()
		h.checkBalanced(t)
	})
}

// TestInputLimit: a handed-off connection is held to ConnBufferLimit
// like a local one, its early bytes included: a handler that does not
// consume gets the connection closed with ErrInputLimit, and the client
// gets "-ERR read buffer limit reached". (A relayed connection is pushed
// back instead: its reader stops.)
func TestInputLimit(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.ConnBufferLimit = limit })
	h := hs.h[1]
	h.data = func(*Conn) {} // consumes nothing
	hs.startBoth()
	for _, k := range kindsOf(ForwardHandoff) {
		for _, early := range []int{100, 40 << 10} { // below and above the limit
			key := keyFor(1, "limit-"+k.name, early)
			c := dialRaw(t, hs.own[k.via], key, make([]byte, early))
			c.readInfo(t)
			go func() { _, _ = c.Write(make([]byte, 4*limit)) }()
			line, err := c.r.ReadString('\n')
			if line != "-ERR read buffer limit reached\n" {
				t.Errorf("%s, %d early bytes: %q, %v", k.name, early, line, err)
			}
			waitFor(t, "OnClose", func() bool { _, ok := h.errOf(key); return ok })
			if err, _ := h.errOf(key); !errors.Is(err, ErrInputLimit) {
				t.Errorf("%s, %d early bytes: OnClose(%v), want ErrInputLimit", k.name, early, err)
			}
			c.Close()
		}
	}
	hs.stopAll()
	h.checkBalanced(t)
}

// TestOutputLimit: more than ConnBufferLimit waiting to be sent closes
// the connection with ErrSlowReader, whichever way it reached its
// owner.
func TestOutputLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, func(c *Config) { c.ConnBufferLimit = limit })
		h := hs.h[1]
		flood := make([]byte, 8<<20) // more than the socket buffers and the limit
		h.open = func(c *Conn) {
			if _, err := c.Write(flood); !errors.Is(err, ErrSlowReader) {
				_, _ = fmt.Fprintf(c, "-ERR Write: %v, want ErrSlowReader\n", err)
			}
		}
		hs.startBoth()
		for _, k := range kindsOf(mode) {
			key := keyFor(1, "flood-"+k.name, 0)
			c := dialRaw(t, hs.own[k.via], key, nil)
			waitFor(t, "OnClose", func() bool { _, ok := h.errOf(key); return ok })
			if err, _ := h.errOf(key); !errors.Is(err, ErrSlowReader) {
				t.Errorf("%s: OnClose(%v), want ErrSlowReader", k.name, err)
			}
			c.Close()
		}
		hs.stopAll()
		h.checkBalanced(t)
	})
}
