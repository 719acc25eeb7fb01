package frame

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestAppendKey(t *testing.T) {
	for _, c := range []struct {
		enc  Encoding
		key  string
		want string
		err  error
	}{
		{Line, "room1", "room1\n", nil},
		{Line, "a\rb", "a\rb\n", nil},
		{Binary, "room1", "\xb1\x00\x05room1", nil},
		{Binary, "!a\n\r", "\xb1\x00\x04!a\n\r", nil},
		{Line, "", "", ErrEmptyKey},
		{Binary, "", "", ErrEmptyKey},
		{Line, "!x", "", ErrReservedKey},
		{Line, "a\nb", "", ErrLineKey},
		{Line, "ab\r", "ab\r\r\n", nil},
		{Line, "\r", "\r\r\n", nil},
		{Binary, strings.Repeat("k", MaxKeyLimit+1), "", ErrKeyTooLong},
		{Encoding(9), "k", "", ErrBadEncoding},
	} {
		got, err := AppendKey([]byte("pre"), c.enc, []byte(c.key))
		if !errors.Is(err, c.err) {
			t.Errorf("AppendKey(%v, %q): err %v, want %v", c.enc, c.key, err, c.err)
			continue
		}
		if c.err != nil {
			if string(got) != "pre" {
				t.Errorf("AppendKey(%v, %q) changed dst on error: %q", c.enc, c.key, got)
			}
			if c.enc == Line && LineKeyOK([]byte(c.key)) {
				t.Errorf("LineKeyOK(%q) = true", c.key)
			}
			continue
		}
		if string(got) != "pre"+c.want {
			t.Errorf("AppendKey(%v, %q) = %q, want %q", c.enc, c.key, got[3:], c.want)
		}
	}
}

func TestEncoding(t *testing.T) {
	for _, e := range []Encoding{Line, Binary} {
		got, err := ParseEncoding(e.String())
		if err != nil || got != e {
			t.Errorf("ParseEncoding(%q) = %v, %v", e.String(), got, err)
		}
	}
	if _, err := ParseEncoding("Line"); !errors.Is(err, ErrBadEncoding) {
		t.Errorf("ParseEncoding(Line): %v", err)
	}
	if s := Encoding(0).String(); s != "Encoding(0)" {
		t.Errorf("String of invalid: %q", s)
	}
	var e Encoding
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.TextVar(&e, "enc", Line, "")
	if err := fs.Parse([]string{"-enc", "binary"}); err != nil || e != Binary {
		t.Errorf("flag: %v %v", e, err)
	}
	if _, err := Encoding(3).MarshalText(); !errors.Is(err, ErrBadEncoding) {
		t.Errorf("MarshalText(3): %v", err)
	}
}

func TestAppendError(t *testing.T) {
	for _, c := range []struct{ reason, want string }{
		{"key too long", "-ERR key too long\n"},
		{"two\r\nlines\x00", "-ERR two  lines \n"},
		{"", "-ERR \n"},
		{strings.Repeat("é", 200), "-ERR " + strings.Repeat("é", 128) + "\n"},
	} {
		got := AppendError(nil, c.reason)
		if string(got) != c.want {
			t.Errorf("AppendError(%q) = %q, want %q", c.reason, got, c.want)
		}
		if bytes.Count(got, []byte("\n")) != 1 || len(got) > 6+MaxReason {
			t.Errorf("AppendError(%q) is not one bounded line", c.reason)
		}
		r, ok := ParseError(got)
		if !ok || r != c.want[5:len(c.want)-1] {
			t.Errorf("ParseError(%q) = %q, %v", got, r, ok)
		}
	}
	if _, ok := ParseError([]byte("+OK\n")); ok {
		t.Error("ParseError(+OK)")
	}
	if r, ok := ParseError([]byte("-ERR x\r\n")); !ok || r != "x" {
		t.Errorf("ParseError CRLF = %q %v", r, ok)
	}
}

func TestReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{ErrKeyTooLong, "key too long"},
		{errors.New("boom"), "internal error"},
		{ErrBadDirect, "malformed direct preamble"},
	} {
		if got := Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	d, _ := NewDecoder(Line, 8)
	_, _, err := d.Feed([]byte("!01 "))
	if got := Reason(err); got != "malformed direct preamble: shard index has a leading zero" {
		t.Errorf("Reason(wrapped) = %q", got)
	}
	if got := Reason(errors.Join(errors.New("worker 3"), ErrEmptyKey)); got != "empty key" {
		t.Errorf("Reason(joined) = %q", got)
	}
	// Distinct errors give distinct reasons.
	seen := map[string]error{}
	for _, e := range []error{ErrEmptyKey, ErrKeyTooLong, ErrBadMagic, ErrReservedKey, ErrLineKey,
		ErrBadDirect, ErrBadSecret, ErrShardRange, ErrDirectDisabled, ErrBadVersion, ErrBadHeader,
		ErrHeaderTooLarge, ErrBadEncoding, ErrBadMaxKey} {
		if prev, dup := seen[Reason(e)]; dup {
			t.Errorf("%v and %v share a reason", prev, e)
		}
		seen[Reason(e)] = e
	}
}
