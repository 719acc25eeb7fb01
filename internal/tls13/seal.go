package tls13

import (
	"bytes"
	"net"
	"time"
)

// Seal returns the server's records of st that carry plaintext and then
// close_notify: what a worker writes to a client whose session it holds
// and will not serve (a refusal), with no Conn over the socket.
func Seal(st *State, plaintext []byte) ([]byte, error) {
	var out sink
	c, err := New(&out, st, nil, nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(plaintext); err != nil {
		return nil, err
	}
	if err := c.CloseWrite(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// sink is a transport that keeps what is written.
type sink struct{ bytes.Buffer }

func (*sink) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (*sink) Close() error                     { return nil }
func (*sink) LocalAddr() net.Addr              { return nil }
func (*sink) RemoteAddr() net.Addr             { return nil }
func (*sink) SetDeadline(time.Time) error      { return nil }
func (*sink) SetReadDeadline(time.Time) error  { return nil }
func (*sink) SetWriteDeadline(time.Time) error { return nil }
