package tls13

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Record layer constants (RFC 8446, section 5).
const (
	recordHeader = 5
	// maxPlaintext is the most a record's content holds.
	maxPlaintext = 1 << 14
	// maxCiphertext bounds a protected record's body: the content, its
	// type byte and padding, and the AEAD tag (at most 256 in all).
	maxCiphertext = maxPlaintext + 256
	// maxHandshake bounds a post-handshake message. The only one a
	// server accepts, KeyUpdate, has 1 byte.
	maxHandshake = 1 << 10

	typeAlert       = 21
	typeHandshake   = 22
	typeApplication = 23

	msgKeyUpdate          = 24
	keyUpdateNotRequested = 0
	keyUpdateRequested    = 1

	alertLevelWarning      = 1
	alertLevelFatal        = 2
	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertDecodeError       = 50
	alertUserCanceled      = 90

	// legacyVersion is every TLS 1.3 record's version field.
	legacyVersion = 0x0303
	// writeOverhead bounds what a record adds to its content: the header,
	// the content type and the AEAD tag (16 bytes for every TLS 1.3 suite).
	writeOverhead = recordHeader + 1 + 16
	// closeNotifyWait bounds Close's close_notify, as tls.Conn's.
	closeNotifyWait = 5 * time.Second
)

var (
	errSeqWrap = errors.New("tls13: sequence number exhausted")
	// ErrClosed is returned by a write after CloseWrite or Close.
	ErrClosed = errors.New("tls13: connection closed for writing")
)

// AlertError is a fatal alert, sent to the peer or received from it.
type AlertError struct {
	Code     uint8
	Received bool // the peer sent it; otherwise this side did
}

func (e *AlertError) Error() string {
	if e.Received {
		return fmt.Sprintf("tls13: peer sent alert %d", e.Code)
	}
	return fmt.Sprintf("tls13: sent alert %d", e.Code)
}

// Conn is a server's TLS 1.3 connection after its handshake, over a
// transport that carries its records (the client's socket). Read and
// Write may be called from two goroutines at once, as with a tls.Conn.
//
// Read returns an error of the transport whose Temporary method reports
// true as it is, without recording it, and goes on from where it stopped
// at the next call: a transport that has no bytes yet may say so, and an
// event loop drives the Conn with what it reads (server/tls_loop.go).
type Conn struct {
	tr    net.Conn
	suite *suite

	rmu   sync.Mutex
	rkeys keys
	raw   []byte // ciphertext read from the transport, from a record's start
	plain []byte // decrypted application data not returned yet
	hs    []byte // a post-handshake message split across records
	rerr  error  // sticky: io.EOF after close_notify, or why reading failed

	wmu     sync.Mutex
	wkeys   keys
	wbuf    []byte
	werr    error // sticky
	wclosed bool  // close_notify sent
}

// New returns the Conn of st over tr. raw are bytes of the client's
// records already read from tr (they come first); plain is decrypted
// application data the exporting side had not returned (Read returns it
// first).
func New(tr net.Conn, st *State, raw, plain []byte) (*Conn, error) {
	s, err := suiteOf(st.Suite)
	if err != nil {
		return nil, err
	}
	c := &Conn{tr: tr, suite: s}
	if err := c.rkeys.set(s, append([]byte(nil), st.ClientSecret...), st.ClientSeq); err != nil {
		return nil, fmt.Errorf("client traffic secret: %w", err)
	}
	if err := c.wkeys.set(s, append([]byte(nil), st.ServerSecret...), st.ServerSeq); err != nil {
		return nil, fmt.Errorf("server traffic secret: %w", err)
	}
	c.raw = append([]byte(nil), raw...)
	c.plain = append([]byte(nil), plain...)
	return c, nil
}

// Read reads decrypted application data. It returns io.EOF after the
// client's close_notify, or at its FIN on a record boundary.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if len(c.plain) > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n := copy(p, c.plain)
			c.plain = c.plain[n:]
			if len(c.plain) == 0 {
				c.plain = nil
			}
			return n, nil
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readRecord(); err != nil {
			return 0, err
		}
	}
}

// Buffered returns how many decrypted bytes Read has not returned.
func (c *Conn) Buffered() int {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return len(c.plain)
}

// readRecord reads and handles one record; c.rmu is held. A temporary
// transport error is returned and not recorded; any other error is.
func (c *Conn) readRecord() error {
	for len(c.raw) < recordHeader || len(c.raw) < recordHeader+recordLen(c.raw) {
		if len(c.raw) >= recordHeader {
			if err := c.checkHeader(); err != nil {
				return err
			}
		}
		if err := c.fill(); err != nil {
			return err
		}
	}
	if err := c.checkHeader(); err != nil {
		return err
	}
	n := recordHeader + recordLen(c.raw)
	rec := c.raw[:n]
	var nonce [12]byte
	if err := c.rkeys.nonce(&nonce); err != nil {
		return c.failRead(err, alertBadRecordMAC)
	}
	inner, err := c.rkeys.aead.Open(rec[recordHeader:recordHeader], nonce[:], rec[recordHeader:], rec[:recordHeader])
	if err != nil {
		return c.failRead(fmt.Errorf("tls13: cannot decrypt a record: %w", err), alertBadRecordMAC)
	}
	c.rkeys.seq++
	// The whole inner plaintext, padding included, is at most 2^14+1
	// bytes (RFC 8446, section 5.4): padding is no way past the limit.
	if len(inner) > maxPlaintext+1 {
		return c.failRead(errors.New("tls13: record too large"), alertRecordOverflow)
	}
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return c.failRead(errors.New("tls13: a record with no content type"), alertUnexpectedMessage)
	}
	typ, content := inner[i], inner[:i]
	if len(c.hs) > 0 && typ != typeHandshake {
		// Handshake messages MUST NOT be interleaved with other record
		// types (RFC 8446, section 5.1): neither data nor an alert.
		return c.failRead(fmt.Errorf("tls13: a record of type %d inside a handshake message", typ), alertUnexpectedMessage)
	}
	switch typ {
	case typeApplication:
		c.plain = append(c.plain, content...)
	case typeAlert:
		err = c.handleAlert(content)
	case typeHandshake:
		if len(content) == 0 {
			return c.failRead(errors.New("tls13: an empty handshake record"), alertUnexpectedMessage)
		}
		c.hs = append(c.hs, content...)
		err = c.handleHandshake()
	default:
		err = c.failRead(fmt.Errorf("tls13: unexpected record type %d", typ), alertUnexpectedMessage)
	}
	c.consume(n)
	return err
}

// recordLen is the length in a record header.
func recordLen(h []byte) int { return int(h[3])<<8 | int(h[4]) }

// checkHeader checks the header c.raw starts with: after the handshake
// every record is an application_data record (RFC 8446, section 5.2).
func (c *Conn) checkHeader() error {
	switch {
	case c.raw[0] != typeApplication:
		return c.failRead(fmt.Errorf("tls13: unprotected record of type %d after the handshake", c.raw[0]), alertUnexpectedMessage)
	case int(c.raw[1])<<8|int(c.raw[2]) != legacyVersion:
		return c.failRead(fmt.Errorf("tls13: record version %#02x%02x", c.raw[1], c.raw[2]), alertDecodeError)
	case recordLen(c.raw) > maxCiphertext:
		return c.failRead(fmt.Errorf("tls13: record of %d bytes", recordLen(c.raw)), alertRecordOverflow)
	}
	return nil
}

// fill reads more of the client's records from the transport.
func (c *Conn) fill() error {
	if cap(c.raw)-len(c.raw) < 4096 {
		grown := make([]byte, len(c.raw), max(2*cap(c.raw), len(c.raw)+4096, 8192))
		copy(grown, c.raw)
		c.raw = grown
	}
	// At most the rest of one record past what is buffered: the raw
	// buffer stays within one record and the next one's start.
	want := cap(c.raw)
	if lim := len(c.raw) + recordHeader + maxCiphertext; want > lim {
		want = lim
	}
	n, err := c.tr.Read(c.raw[len(c.raw):want])
	c.raw = c.raw[:len(c.raw)+n]
	if n > 0 {
		return nil
	}
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && ne.Temporary(): //nolint:staticcheck // the transport's "no bytes yet"
		return err
	case errors.Is(err, io.EOF) && len(c.raw) == 0:
		c.rerr = io.EOF
		return io.EOF
	case errors.Is(err, io.EOF):
		c.rerr = io.ErrUnexpectedEOF
		return c.rerr
	}
	c.rerr = err
	return err
}

// consume drops the first n bytes of c.raw.
func (c *Conn) consume(n int) {
	rest := copy(c.raw, c.raw[n:])
	c.raw = c.raw[:rest]
}

// failRead records err with the fatal alert it calls for (an *AlertError,
// not Received, that errors.As finds in what Read returns), sends the
// alert, and returns the recorded error.
func (c *Conn) failRead(err error, alert uint8) error {
	if c.rerr == nil {
		c.rerr = fmt.Errorf("%w (%w)", err, &AlertError{Code: alert})
		c.sendAlert(alertLevelFatal, alert)
	}
	return c.rerr
}

// handleAlert handles an alert from the client.
func (c *Conn) handleAlert(b []byte) error {
	if len(b) != 2 {
		return c.failRead(errors.New("tls13: malformed alert"), alertDecodeError)
	}
	switch b[1] {
	case alertCloseNotify:
		c.rerr = io.EOF
		return io.EOF
	case alertUserCanceled: // a warning, followed by close_notify
		return nil
	}
	c.rerr = &AlertError{Code: b[1], Received: true}
	return c.rerr
}

// handleHandshake handles the post-handshake messages in c.hs. A client
// may send only KeyUpdate.
func (c *Conn) handleHandshake() error {
	for len(c.hs) >= 4 {
		n := int(c.hs[1])<<16 | int(c.hs[2])<<8 | int(c.hs[3])
		if n > maxHandshake {
			return c.failRead(fmt.Errorf("tls13: post-handshake message of %d bytes", n), alertDecodeError)
		}
		if len(c.hs) < 4+n {
			return nil // the rest comes in the next record
		}
		typ, body := c.hs[0], c.hs[4:4+n]
		if typ != msgKeyUpdate {
			return c.failRead(fmt.Errorf("tls13: unexpected post-handshake message %d", typ), alertUnexpectedMessage)
		}
		if n != 1 || body[0] > keyUpdateRequested {
			return c.failRead(errors.New("tls13: malformed KeyUpdate"), alertDecodeError)
		}
		if len(c.hs) != 4+n {
			// The next record is under the new key: a message after it
			// in this record would span a key change (section 5.1).
			return c.failRead(errors.New("tls13: KeyUpdate not at the end of its record"), alertUnexpectedMessage)
		}
		requested := body[0] == keyUpdateRequested
		c.hs = c.hs[:0]
		if err := c.rkeys.update(c.suite); err != nil {
			return c.failRead(err, alertDecodeError)
		}
		if requested {
			if err := c.sendKeyUpdate(false); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendKeyUpdate sends this side's KeyUpdate, under the current key, and
// moves to the next: in answer to one that asked for it, or (tests) asking
// for one.
func (c *Conn) sendKeyUpdate(request bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || c.wclosed {
		return nil // nothing more is written: no key to update
	}
	msg := []byte{msgKeyUpdate, 0, 0, 1, keyUpdateNotRequested}
	if request {
		msg[4] = keyUpdateRequested
	}
	if err := c.writeRecords(typeHandshake, msg); err != nil {
		return err
	}
	if err := c.wkeys.update(c.suite); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// Write encrypts p into records and writes them to the transport, in one
// write.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.werr != nil:
		return 0, c.werr
	case c.wclosed:
		return 0, ErrClosed
	case len(p) == 0:
		return 0, nil
	}
	if err := c.writeRecords(typeApplication, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeRecords encrypts b as records of type typ and writes them; c.wmu
// is held.
func (c *Conn) writeRecords(typ byte, b []byte) error {
	records := max(1, (len(b)+maxPlaintext-1)/maxPlaintext)
	need := len(b) + records*writeOverhead
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, 0, need)
	}
	out := c.wbuf[:0]
	for first := true; first || len(b) > 0; first = false {
		chunk := b[:min(len(b), maxPlaintext)]
		b = b[len(chunk):]
		var nonce [12]byte
		if err := c.wkeys.nonce(&nonce); err != nil {
			c.werr = err
			return err
		}
		body := len(chunk) + 1 + c.wkeys.aead.Overhead()
		start := len(out)
		out = append(out, typeApplication, legacyVersion>>8, legacyVersion&0xff, byte(body>>8), byte(body))
		inner := append(out[start+recordHeader:], chunk...)
		inner = append(inner, typ)
		out = c.wkeys.aead.Seal(out[:start+recordHeader], nonce[:], inner, out[start:start+recordHeader])
		c.wkeys.seq++
	}
	c.wbuf = out[:0]
	if _, err := c.tr.Write(out); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// sendAlert sends an alert, once no other will be: close_notify or a
// fatal one ends the writing side.
func (c *Conn) sendAlert(level, code uint8) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || c.wclosed {
		return
	}
	_ = c.writeRecords(typeAlert, []byte{level, code})
	c.wclosed = true
}

// CloseWrite sends close_notify: the client reads its EOF. Later writes
// fail with ErrClosed.
func (c *Conn) CloseWrite() error {
	c.sendAlert(alertLevelWarning, alertCloseNotify)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	return nil
}

// Close sends close_notify, bounded in time as tls.Conn's Close is, and
// closes the transport.
func (c *Conn) Close() error {
	_ = c.tr.SetWriteDeadline(time.Now().Add(closeNotifyWait))
	_ = c.CloseWrite()
	return c.tr.Close()
}

// LocalAddr returns the transport's local address.
func (c *Conn) LocalAddr() net.Addr { return c.tr.LocalAddr() }

// RemoteAddr returns the transport's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.tr.RemoteAddr() }

// SetDeadline sets the transport's deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.tr.SetDeadline(t) }

// SetReadDeadline sets the transport's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tr.SetReadDeadline(t) }

// SetWriteDeadline sets the transport's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tr.SetWriteDeadline(t) }
